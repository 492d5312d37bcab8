"""The check-in answer's shapes: the signed ``policy`` (optional: left out when the agent has the
current version) and the legacy unsigned ``runbooks``/``window`` fields an older server sends
(accepted by the validator, never used by the agent), whose ``runbooks.params`` when present is
only ``{runbook_id: {param_name: bool | int | str}}``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from osiris_core.errors import SchemaError
from osiris_core.protocol import validate_checkin_response

BASE: dict[str, Any] = {
    "server_time": "2026-01-01T00:00:00.000Z",
    "next_checkin_s": 60,
    "targets": [],
    "runbooks": {"enabled": ["RB-WIN-PATCH-001"], "disabled": []},
    "rules": {
        "version": "v1",
        "signed": {
            "rules": [],
            "version": "v1",
            "sig": {"alg": "ed25519", "key_id": "0a1b2c3d", "value": "AAAA"},
        },
    },
    "window": {"days": ["sun"], "start": "02:00", "duration_min": 60, "timezone": "UTC"},
    "orders": [],
}


def _with(params: Any) -> dict[str, Any]:
    resp = copy.deepcopy(BASE)
    resp["runbooks"]["params"] = params
    return resp


def test_without_params_still_valid() -> None:
    validate_checkin_response(copy.deepcopy(BASE))


def test_good_params() -> None:
    validate_checkin_response(_with({}))
    validate_checkin_response(
        _with(
            {
                "RB-WIN-PATCH-001": {"critical_overdue_days": 15, "allow_reboot": False},
                "RB-WIN-NET-001": {"dns_servers": "10.0.0.1"},
            }
        )  # fmt: skip
    )


@pytest.mark.parametrize(
    "params",
    [
        [],
        {"RB-WIN-PATCH-001": []},
        {"RB-WIN-PATCH-001": {"Bad-Name": 1}},
        {"RB-WIN-PATCH-001": {"n": 1.5}},
        {"RB-WIN-PATCH-001": {"n": None}},
        {"RB-WIN-PATCH-001": {"n": {"nested": 1}}},
        {"RB-WIN-PATCH-001": {"n": "x" * 513}},
        {"RB-WIN-PATCH-001": {"n": 2**60}},
        {"R" * 65: {"n": 1}},
    ],
)
def test_bad_params_refused(params: Any) -> None:
    with pytest.raises(SchemaError, match="runbooks.params"):
        validate_checkin_response(_with(params))


def test_unknown_runbooks_field_still_refused() -> None:
    resp = copy.deepcopy(BASE)
    resp["runbooks"]["paramz"] = {}
    with pytest.raises(SchemaError):
        validate_checkin_response(resp)


# ---- the signed policy in the answer, and the version the agent has in the request


def _policy_answer() -> dict[str, Any]:
    from osiris_core import policy
    from osiris_core.keys import Signer

    doc = policy.make_policy(
        appliance_id="app-1", site_id="site-1", version=3,
        issued_at="2026-01-01T00:00:00.000Z",
        runbooks={"enabled": ["RB-WIN-PATCH-001"], "disabled": []},
        params={"RB-WIN-PATCH-001": {"critical_overdue_days": 15}},
        window={"days": ["sun"], "start": "02:00", "duration_min": 60, "timezone": "UTC"},
        checkin_interval_s=60, l2={"allowed": True, "min_confidence": 0}, allowlists={},
        releases=[], changes=[], ruleset_hash="sha256:" + "0" * 64,
    )  # fmt: skip
    resp = {k: v for k, v in copy.deepcopy(BASE).items() if k not in ("runbooks", "window")}
    resp["policy"] = policy.sign_policy(doc, Signer.generate("osiris/order/t"))
    return resp


def test_answer_with_a_policy_and_no_unsigned_fields() -> None:
    validate_checkin_response(_policy_answer())
    resp = _policy_answer()
    del resp["policy"]  # left out: the agent already has the current version
    validate_checkin_response(resp)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(policy=[]),
        lambda r: r["policy"].pop("sig"),
        lambda r: r["policy"].update(policy="x"),
        lambda r: r["policy"]["sig"].update(alg="rsa"),
        lambda r: r["policy"].update(extra=1),
    ],
)
def test_bad_policy_shape_refused(mutate: Any) -> None:
    resp = _policy_answer()
    mutate(resp)
    with pytest.raises(SchemaError, match="policy"):
        validate_checkin_response(resp)


def test_request_may_name_the_policy_version_it_has() -> None:
    from osiris_core.protocol import validate_checkin_request

    req = {
        "appliance_id": "app-1", "agent_version": "0.1.0", "log_size_seen": 0,
        "status": {"uptime_s": 1, "outbox_depth": 0, "chain_head": "sha256:" + "0" * 64,
                   "seq": 0, "clock": {"ntp_ok": True, "offset_ms": 0, "source": "x"},
                   "checks": []},
    }  # fmt: skip
    validate_checkin_request(req)
    validate_checkin_request({**req, "policy_version": 7})
    for bad in (0, -1, "7", True, 1.5):
        with pytest.raises(SchemaError, match="policy_version"):
            validate_checkin_request({**req, "policy_version": bad})
