"""A record_attestation order (a signed review or risk acceptance, issue 17 item 4) names its
author, so the generic order route never issues one: a body would choose the reviewer. Refused
with 400, nothing signed, queued or audited."""

from __future__ import annotations

from tests.server.conftest import Server


def test_generic_order_route_refuses_record_attestation(server: Server) -> None:
    site = server.site("Attest")
    a = server.enroll(site["id"])
    params = {"kind": "risk_acceptance", "by": "someone else", "reason": "r",
              "until": "2027-01-01T00:00:00.000Z", "host_id": "h1", "check": "patching",
              "exception_opened_at": None}  # fmt: skip
    r = server.admin.post(f"/api/v1/appliances/{a.id}/orders",
                          json={"kind": "record_attestation", "params": params})  # fmt: skip
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "E_NOT_ALLOWED"
    assert server.app.db.query("SELECT id FROM orders") == []
    actions = [x["action"] for x in server.admin.get("/api/v1/audit").json()["audit"]]
    assert "order.create" not in actions
