"""Check-ins carry only what changed (issue 14 item 6), over real HTTP and the real server.

An agent that sends ``holds`` (and ``policy_version``) gets the rules, the targets and the
signed policy only when they differ from what it holds; each part left out is named in
``unchanged``. An older agent (no ``holds``) gets every part, and none of the new fields, as
before. Every kind of change — a rotated credential, a changed target field, a revoked
credential, a site parameter, a runbook toggle, a quarantine lift, a new box key, new rules
after a restart — reaches the next check-in.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from osiris_core import canonical, protocol
from osiris_core.catalog import load_catalog
from osiris_server.app import init_data, sign_rules
from osiris_server.db import gen
from tests.server.conftest import checkin_body, policy_of, start_server, stop_server
from tests.server.test_resources import WINRM

PATCH = "RB-WIN-PATCH-001"
ALL = ["policy", "rules", "targets"]


def rules_hash(resp: dict[str, Any]) -> str:
    """What the agent hashes: the canonical signed rules document."""
    return "sha256:" + hashlib.sha256(canonical.dumps(resp["rules"]["signed"])).hexdigest()


class Holder:
    """One appliance's view: what it last received, and the check-in naming it."""

    def __init__(self, server: Any, a: Any) -> None:
        self.server, self.a = server, a
        self.held: dict[str, Any] = {}

    def checkin(self, **extra: Any) -> tuple[dict[str, Any], int]:
        r = self.server.client(self.a.token).post(
            "/api/v1/checkin", json=checkin_body(self.a, **extra)
        )
        assert r.status_code == 200, r.text
        resp = r.json()
        protocol.validate_checkin_response(resp)  # what the agent checks first
        return resp, len(r.content)

    def delta(self) -> tuple[dict[str, Any], int]:
        """A check-in naming what is held; what arrives replaces it."""
        holds = {k: self.held[k] for k in ("rules", "targets") if k in self.held}
        extra: dict[str, Any] = {"holds": holds}
        if "policy" in self.held:
            extra["policy_version"] = self.held["policy"]
        resp, size = self.checkin(**extra)
        if "rules" in resp:
            self.held["rules"] = rules_hash(resp)
        if "targets" in resp:
            self.held["targets"] = resp["targets_hash"]
        if "policy" in resp:
            self.held["policy"] = resp["policy"]["policy"]["version"]
        return resp, size


def _site_with_cred(server: Any) -> tuple[dict[str, Any], str]:
    site = server.site()
    r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM)
    assert r.status_code == 201, r.text
    return site, r.json()["id"]


def test_an_older_agent_gets_every_part_and_no_new_field(server) -> None:
    site, _ = _site_with_cred(server)
    h = Holder(server, server.enroll(site["id"]))
    resp, _ = h.checkin()
    assert {"rules", "targets", "policy"} <= set(resp)
    assert "unchanged" not in resp and "targets_hash" not in resp
    # its policy_version alone still leaves the policy out (as before issue 14), nothing else
    resp, _ = h.checkin(policy_version=resp["policy"]["policy"]["version"])
    assert "policy" not in resp and "rules" in resp and "targets" in resp
    assert "unchanged" not in resp


def test_an_unchanged_appliance_gets_no_rules_policy_or_targets(server) -> None:
    site, _ = _site_with_cred(server)
    a = server.enroll(site["id"])
    h = Holder(server, a)
    full, full_size = h.delta()  # holds {}: everything, plus the targets' version
    assert full["unchanged"] == [] and {"rules", "targets", "policy"} <= set(full)
    assert full["targets_hash"].startswith("sha256:")
    assert a.opened(full)[0]["password"] == WINRM["password"]
    same, size = h.delta()
    assert sorted(same["unchanged"]) == ALL
    assert not {"rules", "targets", "policy", "targets_hash"} & set(same)
    assert size <= 2048 < full_size, (size, full_size)
    assert set(same) == {"server_time", "next_checkin_s", "orders", "unchanged"}


def test_the_targets_hash_is_stable_across_seals_and_restarts_and_has_no_secret(
    tmp_path,
) -> None:
    """Sealing is random; the hash is over ids, versions and fields, so a restarted server (new
    ciphertexts) still calls the held targets unchanged — and no secret is in its input."""
    info = init_data(tmp_path / "d", "test.osiris/osiris/log")
    from tests.server.conftest import Server

    app, srv, url = start_server(tmp_path / "d")
    s = Server(url=url, app=app, data=tmp_path / "d", admin_token=info["admin_token"], init=info)
    try:
        site, _ = _site_with_cred(s)
        a = s.enroll(site["id"])
        h = Holder(s, a)
        first, _ = h.delta()
        sealed = first["targets"][0]["sealed"]
    finally:
        for c in s.clients:
            c.close()
        stop_server(app, srv)
    app, srv, url = start_server(tmp_path / "d")
    s = Server(url=url, app=app, data=tmp_path / "d", admin_token=info["admin_token"], init=info)
    h.server = s
    try:
        again, _ = h.checkin(holds={})  # everything: sealed anew by this process
        assert again["targets"][0]["sealed"] != sealed
        assert again["targets_hash"] == first["targets_hash"]
        same, _ = h.delta()
        assert sorted(same["unchanged"]) == ALL
        # the hash input: no secret, no ciphertext (checkin_delta hashes ids/versions/fields)
        from osiris_server.api import checkin_delta

        creds = s.app.checkin_cache.site(s.app, site["id"], 0)[2]
        rows = sorted([i, v, m] for m, _e, _c, i, v in creds)
        text = canonical.dumps(rows).decode()
        assert WINRM["password"] not in text and sealed not in text
        assert (
            checkin_delta.site_digest(site["id"], creds)
            == hashlib.sha256(canonical.dumps(rows)).hexdigest()
        )
    finally:
        for c in s.clients:
            c.close()
        stop_server(app, srv)


def _cred_id(server: Any, site_id: str) -> str:
    return server.admin.get(f"/api/v1/sites/{site_id}/credentials").json()["credentials"][0]["id"]


CHANGES = {
    "rotation": ("targets", lambda s, sid, cid: s.admin.patch(
        f"/api/v1/sites/{sid}/credentials/{cid}", json={"password": "N3w-Pa55-rotated!"})),
    "target field": ("targets", lambda s, sid, cid: s.admin.patch(
        f"/api/v1/sites/{sid}/credentials/{cid}", json={"username": "CLINIC\\osiris2"})),
    "revoked": ("targets", lambda s, sid, cid: s.admin.delete(
        f"/api/v1/sites/{sid}/credentials/{cid}")),
    "site param": ("policy", lambda s, sid, cid: s.admin.put(
        f"/api/v1/sites/{sid}/runbooks/{PATCH}/params",
        json={"params": {"critical_overdue_days": 15}})),
    "runbook toggle": ("policy", lambda s, sid, cid: s.admin.put(
        f"/api/v1/sites/{sid}/runbooks", json={"runbooks": {PATCH: False}})),
}  # fmt: skip


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_change_reaches_the_next_checkin_and_nothing_else_is_resent(server, change) -> None:
    site, _ = _site_with_cred(server)
    a = server.enroll(site["id"])
    h = Holder(server, a)
    h.delta()
    assert sorted(h.delta()[0]["unchanged"]) == ALL
    part, act = CHANGES[change]
    r = act(server, site["id"], _cred_id(server, site["id"]))
    assert r.status_code in (200, 204), r.text
    resp, _ = h.delta()
    assert part in resp and part not in resp["unchanged"]
    assert sorted(resp["unchanged"]) == [p for p in ALL if p != part]
    if change == "rotation":
        assert a.opened(resp)[0]["password"] == "N3w-Pa55-rotated!"
    elif change == "target field":
        assert resp["targets"][0]["username"] == "CLINIC\\osiris2"  # a non-secret field
    elif change == "revoked":
        assert resp["targets"] == []  # the targets shrink
    elif change == "site param":
        assert policy_of(a, resp)["params"] == {PATCH: {"critical_overdue_days": 15}}
    else:
        assert PATCH in policy_of(a, resp)["runbooks"]["disabled"]
    assert sorted(h.delta()[0]["unchanged"]) == ALL  # and then quiet again


def test_a_quarantine_lift_and_a_new_box_key_reach_the_next_checkin(server) -> None:
    site, _ = _site_with_cred(server)
    r = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"})
    staff = server.client(r.json()["token"])
    code = staff.post("/api/v1/provisions", json={"site_id": site["id"]}).json()["code"]
    a = server.enroll(site["id"], "quarantined-1", code=code)
    assert a.enroll["quarantined"] is True
    h = Holder(server, a)
    resp, _ = h.delta()
    assert resp["targets"] == []
    assert "targets" in h.delta()[0]["unchanged"]
    assert server.admin.post(f"/api/v1/appliances/{a.id}/confirm", json={}).status_code == 200
    resp, _ = h.delta()
    assert a.opened(resp)[0]["password"] == WINRM["password"]
    assert sorted(h.delta()[0]["unchanged"]) == ALL

    # a new box key (written as the store writes appliance rows: with its generation bumped)
    from nacl.public import PrivateKey

    from osiris_core.seal import public_b64

    new_box = PrivateKey.generate()
    with server.app.db.write() as w:
        w.execute("UPDATE appliances SET box_pub = ? WHERE id = ?", [public_b64(new_box), a.id])
        gen.bump(w, gen.appliance_scope(a.id))
    resp, _ = h.delta()
    assert "targets" in resp
    a.box = new_box
    assert a.opened(resp)[0]["password"] == WINRM["password"]  # sealed to the new key


def test_new_rules_after_a_restart_reach_the_agent_with_the_policy_naming_them(tmp_path) -> None:
    """A server restarted with another catalogue's rules (here: the catalogue's rules less
    one, signed at start as ``_load_catalog`` signs them) sends rules and a policy naming them;
    the targets stay unchanged."""
    from tests.server.conftest import Server

    info = init_data(tmp_path / "d", "test.osiris/osiris/log")

    def start(rules: list[Any] | None) -> Server:
        app, srv, url = start_server(tmp_path / "d")
        if rules is not None:
            app.signed_rules = sign_rules(rules, app.order_signer)
            app.signed_rules_json = canonical.dumps(app.signed_rules)
        s = Server(url=url, app=app, data=tmp_path / "d", admin_token=info["admin_token"],
                   init=info)  # fmt: skip
        s.srv = srv  # type: ignore[attr-defined]
        return s

    def stop(s: Server) -> None:
        for c in s.clients:
            c.close()
        stop_server(s.app, s.srv)  # type: ignore[attr-defined]

    s = start(None)
    first_app = s.app  # kept alive: the server's per-app caches key on id(app)
    try:
        site, _ = _site_with_cred(s)
        a = s.enroll(site["id"])
        h = Holder(s, a)
        first, _ = h.delta()
        old_rules = h.held["rules"]
    finally:
        stop(s)
    s = start(list(load_catalog().rules)[:-1])
    assert s.app is not first_app
    h.server = s
    try:
        resp, _ = h.delta()
        assert "rules" in resp and "policy" in resp and resp["unchanged"] == ["targets"]
        assert rules_hash(resp) != old_rules
        assert policy_of(a, resp)["ruleset_hash"] == rules_hash(resp)
        assert len(resp["rules"]["signed"]["rules"]) == len(first["rules"]["signed"]["rules"]) - 1
        assert sorted(h.delta()[0]["unchanged"]) == ALL
    finally:
        stop(s)


@pytest.mark.parametrize(
    "holds",
    [
        {"rules": "sha256:" + "A" * 64},  # upper-case hex
        {"rules": "sha256:" + "0" * 63},  # short
        {"targets": "md5:" + "0" * 32},
        {"targets": 7},
        {"rules": "sha256:" + "0" * 64, "policy": 3},  # policy is named by policy_version
        {"secret": "x"},
        [],
        "all",
    ],
)
def test_bad_holds_are_refused_with_a_400_and_nothing_recorded(server, holds) -> None:
    site, _ = _site_with_cred(server)
    a = server.enroll(site["id"])
    r = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a, holds=holds))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "E_SCHEMA" and "holds" in err["message"]
    assert "Traceback" not in r.text
    audit = server.admin.get("/api/v1/audit", params={"action": "credential.deliver"}).json()
    assert a.id not in json.dumps(audit)  # refused before anything was delivered


def test_a_wrong_held_version_gets_the_part_again(server) -> None:
    """A hash the server never issued (a corrupt or forged memory) is simply not current."""
    site, _ = _site_with_cred(server)
    a = server.enroll(site["id"])
    h = Holder(server, a)
    h.delta()
    resp, _ = h.checkin(holds={"rules": "sha256:" + "0" * 64, "targets": "sha256:" + "1" * 64},
                        policy_version=999)  # fmt: skip
    assert "rules" in resp and "targets" in resp and resp["unchanged"] == []
    assert "policy" in resp  # 999 is not the current version: the current one is sent
