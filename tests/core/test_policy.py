"""``osiris.policy/1`` (DESIGN §3.6): building, signing, and the agent's all-or-nothing check."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from osiris_core import canonical, policy
from osiris_core.catalog import load_catalog
from osiris_core.keys import Signer
from osiris_core.policy import PolicyRefused, verify_policy
from osiris_core.release import make_release, sign_release

CAT = load_catalog()
ORDER = Signer.generate("osiris/order/test")
OTHER = Signer.generate("osiris/order/test")  # same name, another key: a forgery
STORE = "/nix/store/" + "c" * 32 + "-nixos-system-osiris-25.05"
RULES_HASH = "sha256:" + "ab" * 32


def _doc(version: int = 1, **over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "appliance_id": "app-1",
        "site_id": "site-1",
        "version": version,
        "issued_at": "2026-01-01T00:00:00.000Z",
        "runbooks": {"enabled": ["LIN-PERM-001", "RB-WIN-UPD-002"], "disabled": ["LIN-SVC-004"]},
        "params": {
            "LIN-PERM-001": {"target_mode": "600"},
            "RB-WIN-UPD-002": {"wsus_server": "https://wsus.clinic.example:8531"},
        },
        "window": {"days": ["sun"], "start": "02:00", "duration_min": 60, "timezone": "UTC"},
        "checkin_interval_s": 60,
        "l2": {"allowed": True, "min_confidence": 0},
        "allowlists": {"RB-WIN-UPD-002": {"wsus_server": ["https://wsus.clinic.example:8531"]}},
        "releases": [],
        "changes": [
            {
                "runbook_id": "RB-WIN-UPD-002",
                "param": "wsus_server",
                "scope": "site",
                "old": None,
                "new": "https://wsus.clinic.example:8531",
                "by": "operator:tok_admin",
                "at": "2026-01-01T00:00:00.000Z",
            },
        ],  # fmt: skip
        "ruleset_hash": RULES_HASH,
    }
    kw.update(over)
    return policy.make_policy(**kw)


def _verify(env: Any, **kw: Any) -> policy.AcceptedPolicy:
    kw.setdefault("appliance_id", "app-1")
    kw.setdefault("site_id", "site-1")
    return verify_policy(env, ORDER.verifier(), catalog=CAT, **kw)


def test_round_trip_and_what_it_yields() -> None:
    env = policy.sign_policy(_doc(), ORDER)
    got = _verify(env)
    assert got.version == 1 and got.doc == env["policy"]
    assert got.sha256 == policy.envelope_sha256(env)
    assert got.params["LIN-PERM-001"] == {"target_mode": "600"}
    assert got.trust_values(CAT) == {
        "RB-WIN-UPD-002": {"wsus_server": "https://wsus.clinic.example:8531"}
    }
    # the accepted values carry the policy's trust context, with its trust values pinned
    upd = CAT.runbook("RB-WIN-UPD-002")
    upd.validate_params(got.params["RB-WIN-UPD-002"])
    with pytest.raises(policy.SchemaError, match="only the signed policy"):
        upd.validate_params({"wsus_server": ""}, got.context)


def test_content_hash_ignores_version_and_issue_time() -> None:
    a = _doc(1)
    b = _doc(7, issued_at="2027-05-05T05:05:05.000Z")
    assert policy.content_sha256(a) == policy.content_sha256(b)
    c = _doc(1, checkin_interval_s=120)
    assert policy.content_sha256(a) != policy.content_sha256(c)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (
            lambda e: e["policy"]["params"]["LIN-PERM-001"].update(target_mode="0666"),
            "bad signature",
        ),  # a tampered parameter: the signature no longer verifies
        (lambda e: e["policy"].update(version=99), "bad signature"),
        (lambda e: e.update(sig=policy.sign_policy(e["policy"], OTHER)["sig"]), "bad signature"),
        (lambda e: e["sig"].update(key_id="00000000"), "unknown key"),
        (lambda e: e["sig"].update(value="AAAA"), "malformed"),
        (lambda e: e.pop("sig"), "malformed"),
        (lambda e: e.update(extra=1), "malformed"),
    ],
    ids=[
        "tampered-param",
        "tampered-version",
        "wrong-key",
        "unknown-key-id",
        "short-sig",
        "unsigned",
        "extra-field",
    ],  # fmt: skip
)
def test_tampered_or_foreign_signature_is_refused(mutate: Any, why: str) -> None:
    env = policy.sign_policy(_doc(), ORDER)
    mutate(env)
    with pytest.raises(PolicyRefused, match=why):
        _verify(env)


def test_other_appliance_site_and_malformed_are_refused() -> None:
    env = policy.sign_policy(_doc(), ORDER)
    with pytest.raises(PolicyRefused, match="wrong appliance"):
        _verify(env, appliance_id="app-2")
    with pytest.raises(PolicyRefused, match="wrong site"):
        _verify(env, site_id="site-2")
    bad = copy.deepcopy(_doc())
    bad["window"]["start"] = "25:00"  # signed correctly, but not a valid policy
    sig = base64.b64encode(ORDER.sign(canonical.dumps(bad))).decode()
    env = {"policy": bad, "sig": {"alg": "ed25519", "key_id": ORDER.key_id_hex, "value": sig}}
    with pytest.raises(PolicyRefused, match="malformed"):
        _verify(env)


def test_rollback_and_reused_version_are_refused_same_bytes_are_a_no_op() -> None:
    v2 = _verify(policy.sign_policy(_doc(2), ORDER))
    with pytest.raises(PolicyRefused, match="rollback: version 1 is lower than version 2"):
        _verify(policy.sign_policy(_doc(1), ORDER), in_force=v2)
    with pytest.raises(PolicyRefused, match="reused"):
        _verify(policy.sign_policy(_doc(2, checkin_interval_s=30), ORDER), in_force=v2)
    assert _verify(v2.envelope, in_force=v2) is v2
    assert _verify(policy.sign_policy(_doc(3), ORDER), in_force=v2).version == 3


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"LIN-PERM-001": {"target_mode": "0666", "allowed_modes": "666"}}, "adds permission"),
        ({"LIN-SVC-002": {"service": "debug-shell.service"}}, "root shell"),
        ({"LIN-SVC-004": {"units": "sshd auditd"}}, "allow-list"),
        ({"RB-WIN-UPD-002": {"wsus_server": "http://attacker.example"}}, "allow-list"),
        ({"RB-WIN-NET-001": {"dns_servers": "8.8.8.8"}}, "allow-list"),
        ({"RB-NIX-FW-001": {"state_file": "/var/lib/osiris/appliance.key"}}, "inside"),
        ({"RB-NIX-GEN-001": {"desired_system": STORE}}, "allow-list"),
    ],
    ids=lambda x: str(x)[:30],
)
def test_a_signed_but_weakening_parameter_refuses_the_whole_policy(params, why) -> None:  # noqa: ANN001
    """Even the server's own signature does not make a weakening value acceptable."""
    env = policy.sign_policy(_doc(params=params, allowlists={}, changes=[]), ORDER)
    with pytest.raises(PolicyRefused, match=f"parameter refused.*{why}"):
        _verify(env)


def test_desired_system_needs_a_signed_release() -> None:
    rel = sign_release(make_release(STORE, "osiris-25.05"), ORDER)
    allow = {"RB-NIX-GEN-001": {"desired_system": [STORE]}}
    params = {"RB-NIX-GEN-001": {"desired_system": STORE}}
    env = policy.sign_policy(_doc(params=params, allowlists=allow, releases=[rel]), ORDER)
    got = _verify(env)
    assert got.context.releases[STORE] == rel
    # the same, but the release signed by another key: refused (the policy's signature alone
    # does not make a store path a release)
    forged = sign_release(make_release(STORE, "osiris-25.05"), OTHER)
    env = policy.sign_policy(_doc(params=params, allowlists=allow, releases=[forged]), ORDER)
    with pytest.raises(PolicyRefused, match="release #0"):
        _verify(env)
    # allow-listed but no release document at all
    env = policy.sign_policy(_doc(params=params, allowlists=allow), ORDER)
    with pytest.raises(PolicyRefused, match="signed release"):
        _verify(env)
    # a dedicated release key pinned at enrolment is accepted beside the order key
    rkey = Signer.generate("osiris/release")
    rel2 = sign_release(make_release(STORE, "osiris-25.05"), rkey)
    env = policy.sign_policy(_doc(params=params, allowlists=allow, releases=[rel2]), ORDER)
    assert _verify(env, release_verifiers=[ORDER.verifier(), rkey.verifier()]).version == 1


def test_unknown_runbooks_and_params_are_skipped_not_fatal() -> None:
    """A newer server's catalogue: what this agent does not know falls back to the default."""
    params = {"RB-NEW-001": {"x": 1}, "LIN-PERM-001": {"target_mode": "600", "new_knob": 3}}
    got = _verify(policy.sign_policy(_doc(params=params, allowlists={}, changes=[]), ORDER))
    assert got.params == {"LIN-PERM-001": {"target_mode": "600"}}
    assert {(s["runbook_id"], s["param"]) for s in got.skipped} == {
        ("RB-NEW-001", "x"), ("LIN-PERM-001", "new_knob"),
    }  # fmt: skip


def test_make_policy_refuses_bad_structure() -> None:
    with pytest.raises(policy.SchemaError):
        _doc(runbooks={"enabled": ["A"], "disabled": ["A"]})
    with pytest.raises(policy.SchemaError):
        _doc(l2={"allowed": True, "min_confidence": 101})
    with pytest.raises(policy.SchemaError):
        _doc(version=0)
    with pytest.raises(policy.SchemaError):
        _doc(ruleset_hash="md5:x")
    with pytest.raises(policy.SchemaError):
        policy.validate_envelope({"policy": {}, "sig": {}})
