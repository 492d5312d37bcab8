"""The agent's egress step: a failed refresh is a signed ``alert`` bundle and one incident that
reaches the server; a recovery is a ``compliant`` bundle. Real UDP DNS, real nft in a netns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from osiris_agent.cycle import CycleReport
from osiris_agent.egress_refresh import CHECK, EgressRefresher
from osiris_core.evidence import verify_envelope
from osiris_lab.dns_responder import DnsResponder
from tests.agent.fixtures_agent import FakeCentral, make_agent
from tests.agent.test_egress_refresh import elements, nft  # noqa: F401 - the fixture

EGRESS = '[egress]\nhosts = ["api.example.test", "b.example.test"]\nresolvers = ["127.0.0.1"]\n'


@pytest.fixture()
def srv() -> Iterator[FakeCentral]:
    with FakeCentral() as s:
        yield s


def _bundles(a: Any) -> list[dict[str, Any]]:
    return [e for e in a.outbox.envelopes() if e["bundle"]["check"] == CHECK]


def test_failure_alerts_once_and_recovery_is_recorded(srv, tmp_path, nft) -> None:  # noqa: F811
    a = make_agent(srv, tmp_path / "st", EGRESS)
    records: dict[str, list[str] | str] = {
        "api.example.test": ["192.0.2.10"], "b.example.test": ["192.0.2.20"],
    }  # fmt: skip
    with DnsResponder(records) as d:
        a.loop.egress = EgressRefresher(a, port=d.port, nft=nft)
        assert a.loop.egress.run(CycleReport()).ok
        assert _bundles(a) == []  # a routine success records nothing
        d.records["api.example.test"] = "SERVFAIL"
        for _ in range(2):  # the outage lasts two refreshes: two alerts, one incident
            report = CycleReport()
            assert not a.loop.egress.run(report).ok
            assert any("api.example.test" in e for e in report.errors)
        assert elements(nft, "hosts_v4") == {"192.0.2.10", "192.0.2.20"}  # old set kept
        alerts = _bundles(a)
        assert [e["bundle"]["outcome"] for e in alerts] == ["alert", "alert"]
        for env in alerts:
            v = a.signer.verifier()
            verify_envelope(env, {v.key_id_hex: v})
        obs = alerts[0]["bundle"]["post_state"]["observed"]
        assert obs["hosts"]["api.example.test"]["ok"] is False
        assert "SERVFAIL" in obs["hosts"]["api.example.test"]["reason"]
        assert obs["hosts"]["b.example.test"]["ok"] is True
        pending = [i for i in a.db.unsent_incidents() if i["kind"] == "egress_refresh_failed"]
        assert len(pending) == 1
        a.flusher.flush(CycleReport())  # the incident and the alert reach the server
        assert [i["kind"] for i in srv.state.incidents].count("egress_refresh_failed") == 1
        d.records["api.example.test"] = ["192.0.2.11"]
        assert a.loop.egress.run(CycleReport()).ok
        assert _bundles(a)[-1]["bundle"]["outcome"] == "compliant"
        assert a.loop.egress.run(CycleReport()).ok
        assert len(_bundles(a)) == 3  # back to routine: nothing more
    assert "192.0.2.11" in elements(nft, "hosts_v4")


def test_cycle_runs_it_when_due_and_not_without_hosts(srv, tmp_path, nft) -> None:  # noqa: F811
    a = make_agent(srv, tmp_path / "st", EGRESS)
    with DnsResponder({"api.example.test": "NXDOMAIN", "b.example.test": "NXDOMAIN"}) as d:
        a.loop.egress = EgressRefresher(a, port=d.port, nft=nft)
        a.loop.cycle()
        assert [e["bundle"]["outcome"] for e in _bundles(a)] == ["alert"]
        a.loop.cycle()  # not due again before refresh_interval_s
        assert len(_bundles(a)) == 1
    b = make_agent(srv, tmp_path / "st2")
    with DnsResponder({}) as d:
        b.loop.egress = EgressRefresher(b, port=d.port, nft=nft)
        b.loop.cycle()
        assert d.queries == [] and _bundles(b) == []
