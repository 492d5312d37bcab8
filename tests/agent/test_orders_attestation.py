"""record_attestation orders (issue 17 item 4) through a real check-in: the appliance signs
exactly one activity_review / risk_acceptance bundle carrying the statement, and an order whose
params were altered after signing, or that carries a field no statement has, signs no statement
(the order's fate is a ``rejected`` evidence_pipeline bundle)."""

from __future__ import annotations

import base64
import copy

import pytest

from osiris_agent.cycle import CycleReport
from osiris_core import canonical
from osiris_core.errors import SchemaError
from osiris_core.orders import new_order
from tests.agent.fixtures_agent import FakeCentral, make_agent

REVIEW = {
    "kind": "activity_review",
    "reviewer": "alice",
    "reviewed_at": "2026-12-01T10:00:00.000Z",
    "month": "2026-11",
    "note": "read the November packet",
    "packet_sha256": None,
}
ACCEPT = {
    "kind": "risk_acceptance",
    "by": "sec-official",
    "reason": "legacy imaging PC, vendor-locked",
    "until": "2027-06-01T00:00:00.000Z",
    "host_id": "h1",
    "check": "windows_bitlocker",
    "exception_opened_at": None,
}


@pytest.fixture()
def srv():
    with FakeCentral() as s:
        yield s


def _forged(srv: FakeCentral, params: dict) -> dict:
    """A validly signed review order whose params are then replaced (signature now wrong)."""
    env = srv.queue_order("record_attestation", REVIEW)
    env = copy.deepcopy(env)
    srv.state.pending_orders.remove(srv.state.pending_orders[-1])
    env["order"]["params"] = params
    srv.state.pending_orders.append(env)
    return env


def _signed_raw(srv: FakeCentral, params: dict) -> dict:
    """An order with ``params`` signed by the real order key without validation (a buggy or
    hostile server): the agent's schema check must still refuse it."""
    order = new_order(srv.state.site_id, srv.state.appliance_id, "record_attestation", REVIEW,
                      False)  # fmt: skip
    order["params"] = params
    key = srv.state.orders_key
    sig = base64.b64encode(key.sign(canonical.dumps(order))).decode("ascii")
    env = {"order": order, "sig": {"alg": "ed25519", "key_id": key.key_id_hex, "value": sig}}
    srv.state.pending_orders.append(env)
    return env


def test_statements_are_signed_and_forgeries_are_not(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s")
    review = srv.queue_order("record_attestation", REVIEW)
    accept = srv.queue_order("record_attestation", ACCEPT)
    forged = _forged(srv, {**REVIEW, "reviewer": "mallory"})
    extra = _signed_raw(srv, {**REVIEW, "reviewer_override": "x"})
    mixed = _signed_raw(srv, {**REVIEW, "by": "x"})
    a.checkin(CycleReport())
    bundles = {e["bundle"]["order_id"]: e["bundle"] for e in a.outbox.envelopes()
               if e["bundle"]["tier"] == "order"}  # fmt: skip
    oid = lambda e: e["order"]["order_id"]  # noqa: E731
    r = bundles[oid(review)]
    assert (r["check"], r["outcome"], r["host_id"]) == (
        "activity_review",
        "compliant",
        a.appliance_id,
    )
    assert r["controls"] == ["164.308(a)(1)(ii)(D)"]
    assert r["post_state"] == {k: v for k, v in REVIEW.items() if k != "kind"}
    assert r["pre_state"] is None and r["runbook_id"] is None
    assert "activity review of 2026-11 by alice" in r["action_taken"]
    k = bundles[oid(accept)]
    assert (k["check"], k["outcome"]) == ("risk_acceptance", "compliant")
    assert k["controls"] == ["164.308(a)(1)(ii)(B)"]
    assert k["post_state"] == {k2: v for k2, v in ACCEPT.items() if k2 != "kind"}
    for env, why in ((forged, "bad signature"), (extra, "reviewer_override"), (mixed, "'by'")):
        b = bundles[oid(env)]
        assert (b["check"], b["outcome"]) == ("evidence_pipeline", "rejected"), why
        assert why in b["action_taken"]
    checks = [e["bundle"]["check"] for e in a.outbox.envelopes()]
    assert checks.count("activity_review") == 1 and checks.count("risk_acceptance") == 1


@pytest.mark.parametrize(
    "params",
    [
        {**REVIEW, "month": "2026-13"},
        {**REVIEW, "month": "2026-1x"},
        {k: v for k, v in REVIEW.items() if k != "note"},
        {**ACCEPT, "until": "next year"},
        {**ACCEPT, "command": "rm -rf /"},
        {**REVIEW, "kind": "anything_else"},
    ],
)
def test_new_order_refuses_a_malformed_statement(srv, params) -> None:
    with pytest.raises(SchemaError):
        new_order("s1", "a1", "record_attestation", params, False)
