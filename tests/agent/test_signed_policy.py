"""The agent takes what it does only from a signed ``osiris.policy/1`` it verified (DESIGN §3.6).

A fake Central Command (real HTTP on loopback, the fixture's order key) hands out policies; a
refused one — wrong key, lower version, tampered parameter, a signed but weakening parameter,
another appliance or site, malformed — yields exactly one ``rejected`` bundle (check ``policy``)
and one incident, and the last good policy stays in force (also across a restart). Unsigned
legacy fields of the answer (``runbooks``, ``window``) are ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from osiris_agent.cycle import CycleReport
from osiris_core import policy
from osiris_core.errors import SchemaError
from osiris_core.keys import Signer
from tests.agent.fixtures_agent import FakeCentral, make_agent

PERM = "LIN-PERM-001"
UPD = "RB-WIN-UPD-002"
WSUS = "https://wsus.clinic.example:8531"


@pytest.fixture()
def srv() -> Iterator[FakeCentral]:
    with FakeCentral() as s:
        yield s


def _bundles(a: Any, check: str) -> list[dict[str, Any]]:
    return [e["bundle"] for e in a.outbox.envelopes() if e["bundle"]["check"] == check]


def _incidents(a: Any, srv: Any, kind: str) -> list[dict[str, Any]]:
    return [i for i in a.db.unsent_incidents() + srv.state.incidents if i["kind"] == kind]


def _signed(srv: Any, *, key: Signer | None = None, **changes: Any) -> dict[str, Any]:
    """The fake's current policy with ``changes`` to its document, signed (by ``key``)."""
    doc = copy.deepcopy(srv.state.policy_env["policy"])
    doc.update(changes)
    return policy.sign_policy(doc, key or srv.state.orders_key)


def test_policy_drives_runbooks_params_and_window(srv, tmp_path) -> None:
    srv.state.runbooks = {"enabled": [PERM], "disabled": ["LIN-SVC-004"]}
    srv.state.params = {PERM: {"target_mode": "600"}}
    srv.state.window = {"days": ["sun"], "start": "03:00", "duration_min": 90, "timezone": "UTC"}
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        a.checkin(CycleReport())
        assert a.policy_in_force is not None and a.policy_in_force.version == 1
        assert a.policy.enabled_runbooks == frozenset({PERM})
        assert a.policy.params_for(PERM) == {"target_mode": "600"}
        assert (a.window.days, a.window.start, a.window.duration_min) == (("sun",), "03:00", 90)
        assert a.policy.policy_version == "1"
        # the next check-in names the version it has; nothing is re-sent, nothing changes
        a.checkin(CycleReport())
        assert srv.state.checkins[-1]["policy_version"] == 1
        assert a.policy_in_force.version == 1
    finally:
        a.close()


def test_unsigned_runbooks_and_window_of_an_answer_are_ignored(srv, tmp_path) -> None:
    """A server (or anyone answering for it) that sends the old unsigned fields changes
    nothing: only the signed policy counts."""
    from osiris_core.protocol import validate_checkin_response

    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        a.checkin(CycleReport())
        before = a.policy.enabled_runbooks
        resp = a.client.post("/checkin", {
            "appliance_id": a.appliance_id, "agent_version": "0.1.0",
            "status": a.status_block(), "log_size_seen": a.witness.size,
        })  # fmt: skip
        resp["runbooks"] = {"enabled": [], "disabled": sorted(a.catalog.runbooks),
                            "params": {PERM: {"target_mode": "0666"}}}  # fmt: skip
        resp["window"] = {"days": ["mon"], "start": "00:00", "duration_min": 1440,
                          "timezone": "UTC"}  # fmt: skip
        validate_checkin_response(resp)  # still a valid answer (an older server's fields) …
        a.apply(resp, CycleReport())  # … but nothing of it is used
        assert a.policy.enabled_runbooks == before and a.window.days == ()
        assert a.policy.params_for(PERM) == {}
    finally:
        a.close()


def test_refused_policies_leave_the_good_one_in_force(srv, tmp_path) -> None:
    srv.state.params = {PERM: {"target_mode": "600"}}
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        a.checkin(CycleReport())
        good = a.policy_in_force
        assert good is not None and good.version == 1
        # a second version, so that the first one can be replayed as a rollback
        srv.state.params = {PERM: {"target_mode": "640"}}
        a.checkin(CycleReport())
        assert a.policy_in_force.version == 2
        good = a.policy_in_force
        v1 = copy.deepcopy(good.envelope)
        v1["policy"]["version"] = 1
        tampered = copy.deepcopy(good.envelope)
        tampered["policy"]["version"] = 3
        tampered["policy"]["params"][PERM] = {"target_mode": "0666", "allowed_modes": "666"}
        forger = Signer.generate(srv.state.orders_key.name)  # same name, not the pinned key
        hostile = [
            ("wrong key", _signed(srv, key=forger, version=3), "bad signature"),
            ("tampered", tampered, "bad signature"),
            ("rollback", policy.sign_policy(v1["policy"], srv.state.orders_key), "rollback"),
            ("weakening", _signed(srv, version=3, params={PERM: {"target_mode": "0666"}}),
             "parameter refused"),
            ("debug shell", _signed(srv, version=3,
                                    params={"LIN-SVC-002": {"service": "debug-shell.service"}}),
             "root shell"),
            ("trust off list", _signed(srv, version=3, params={UPD: {"wsus_server": WSUS}}),
             "allow-list"),
            ("other appliance", _signed(srv, version=3, appliance_id="app-other"),
             "wrong appliance"),
            ("other site", _signed(srv, version=3, site_id="site-other"), "wrong site"),
            ("reused version", _signed(srv, checkin_interval_s=30), "reused"),
            ("malformed", {"policy": {"schema": "osiris.policy/1"}, "sig": good.envelope["sig"]},
             "bad signature"),
        ]  # fmt: skip
        for n, (name, env, why) in enumerate(hostile, start=1):
            srv.state.policy_override = env
            a.checkin(CycleReport())
            assert a.policy_in_force is good, name
            assert a.policy.params_for(PERM) == {"target_mode": "640"}, name
            rejected = _bundles(a, "policy")
            assert len(rejected) == n, (name, [b["action_taken"] for b in rejected])
            b = rejected[-1]
            assert b["outcome"] == "rejected" and b["host_id"] == a.appliance_id
            assert why in b["action_taken"], (name, b["action_taken"])
            assert "policy 2 stays in force" in b["action_taken"]
            assert b["pre_state"]["observed"]["reason"] and b["policy_version"] == "2"
            # the same document again: no second bundle, no second incident
            a.checkin(CycleReport())
            assert len(_bundles(a, "policy")) == n
        assert len(_incidents(a, srv, "policy_rejected")) == len(hostile)
        # nothing but the refusals was signed about it; the good policy still rules
        srv.state.policy_override = None
        a.checkin(CycleReport())
        assert a.policy_in_force is good
    finally:
        a.close()


def test_the_policy_survives_restart_and_a_rollback_after_it(srv, tmp_path) -> None:
    srv.state.params = {PERM: {"target_mode": "600"}}
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    a.checkin(CycleReport())
    old = copy.deepcopy(a.policy_in_force.envelope)
    srv.state.params = {PERM: {"target_mode": "400", "allowed_modes": "400"}}
    a.checkin(CycleReport())
    assert a.policy_in_force.version == 2
    a.close()
    srv.state.policy_override = old  # after the restart, the older (validly signed) one
    b = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        assert b.policy_in_force is not None and b.policy_in_force.version == 2
        b.checkin(CycleReport())
        assert b.policy_in_force.version == 2
        assert b.policy.params_for(PERM) == {"target_mode": "400", "allowed_modes": "400"}
        assert "rollback" in _bundles(b, "policy")[-1]["action_taken"]
    finally:
        b.close()


def test_trust_change_is_signed_evidence_naming_who(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        a.checkin(CycleReport())
        assert _bundles(a, "policy_change") == []
        srv.state.allowlists = {UPD: {"wsus_server": [WSUS]}}
        srv.state.params = {UPD: {"wsus_server": WSUS}}
        rec = {
            "runbook_id": UPD,
            "param": "wsus_server",
            "scope": "site",
            "old": None,
            "new": WSUS,
            "by": "operator:tok_admin1",
            "at": "2026-02-03T04:05:06.789Z",
        }
        srv.state.changes = [rec]  # fmt: skip
        a.checkin(CycleReport())
        assert a.policy.params_for(UPD)["wsus_server"] == WSUS
        (b,) = _bundles(a, "policy_change")
        assert b["outcome"] == "alert" and b["runbook_id"] == UPD
        assert "operator:tok_admin1" in b["action_taken"] and WSUS in b["action_taken"]
        assert b["pre_state"]["observed"] == {"param": "wsus_server", "value": ""}
        assert b["post_state"]["change"] == rec
        assert b["policy_version"] == "2"  # recorded under the policy that made the change
        # an order or rule may not redirect it elsewhere: only the policy's value passes
        upd = a.catalog.runbook(UPD)
        with pytest.raises(SchemaError, match="only the signed policy"):
            upd.validate_params(a.policy.params_for(UPD, {"wsus_server": "http://evil:8530"}))
        # an unrelated change: no new policy_change bundle
        srv.state.params = {UPD: {"wsus_server": WSUS}, PERM: {"target_mode": "600"}}
        a.checkin(CycleReport())
        assert len(_bundles(a, "policy_change")) == 1
        # cleared again: a second one
        srv.state.params = {}
        a.checkin(CycleReport())
        assert [x["post_state"]["observed"]["value"] for x in _bundles(a, "policy_change")] == [
            WSUS, "",
        ]  # fmt: skip
    finally:
        a.close()


def test_the_answer_can_only_shorten_the_policy_cadence(srv, tmp_path) -> None:
    srv.state.checkin_interval_s = 300
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        a.checkin(CycleReport())
        assert a.next_checkin_s == 60  # the answer's 60 s shortens the policy's 300 s
        srv.state.checkin_interval_s = 30
        a.checkin(CycleReport())
        assert a.next_checkin_s == 30  # the answer cannot lengthen it
    finally:
        a.close()


def test_a_signed_order_cannot_weaken_or_redirect(srv, tmp_path) -> None:
    """Even an order signed by the pinned key runs only values the validator accepts; a
    weakening or trust-redirecting one is refused before any script is rendered or sent."""
    srv.state.runbooks = {"enabled": [PERM, UPD], "disabled": []}
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        a.checkin(CycleReport())
        sent: list[str] = []
        a.transport_for = lambda h: sent.append(h)  # type: ignore[method-assign]
        a.engine.executor.transports = a.transport_for
        for rb, values, why in (
            (PERM, {"target_mode": "0666", "allowed_modes": "666"}, "adds permission bits"),
            (UPD, {"wsus_server": "http://attacker.example"}, "only the signed policy"),
        ):
            env = srv.queue_order(
                "run_runbook", {"runbook_id": rb, "host_id": "lin-1", "parameters": values}
            )
            a.checkin(CycleReport())
            oid = env["order"]["order_id"]
            (b,) = [e["bundle"] for e in a.outbox.envelopes() if e["bundle"]["order_id"] == oid]
            assert b["outcome"] == "failed" and why in b["action_taken"], b["action_taken"]
        assert sent == []  # no transport was even opened
    finally:
        a.close()
