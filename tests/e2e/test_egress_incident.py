"""A failed egress refresh reaches the REAL osiris-server: the signed ``alert`` bundle is
ingested as evidence and one ``egress_refresh_failed`` incident is opened on the site, however
many refreshes the outage lasts; the recovery is ingested as ``compliant``. Real UDP DNS
(osiris_lab/dns_responder.py) on loopback and real nft in a private network namespace."""

from __future__ import annotations

import pytest

from osiris_agent.egress_refresh import CHECK, EgressRefresher
from osiris_lab.dns_responder import DnsResponder
from tests.agent.test_egress_refresh import elements, nft  # noqa: F401 - the fixture
from tests.e2e.conftest import Central, enroll_agent, seed_site

EGRESS = '[egress]\nhosts = ["api.example.test"]\nresolvers = ["127.0.0.1"]\n'


@pytest.mark.timeout(180)
def test_refresh_failure_is_evidence_and_one_incident_on_the_server(
    central: Central,
    tmp_path,
    nft,  # noqa: F811
) -> None:
    site = seed_site(central)
    agent = enroll_agent(central, site, tmp_path / "state", EGRESS)
    try:
        with DnsResponder({"api.example.test": "SERVFAIL"}) as dns:
            agent.loop.egress = EgressRefresher(agent, port=dns.port, nft=nft)
            assert agent.cycle().reachable
            agent.loop.egress.next_at = 0.0  # the outage lasts a second refresh
            assert agent.cycle().reachable
            assert dns.queries, "the configured resolver was never asked"
            got = [e for e in central.evidence(site.id) if e["check"] == CHECK]
            assert [e["outcome"] for e in got] == ["alert", "alert"]
            incidents = central.api("GET", f"/incidents?site={site.id}")["incidents"]
            mine = [i for i in incidents if i["kind"] == "egress_refresh_failed"]
            assert len(mine) == 1 and mine[0]["status"] == "open", mine
            assert "api.example.test" in mine[0]["summary"]
            dns.records["api.example.test"] = ["192.0.2.10"]
            agent.loop.egress.next_at = 0.0
            assert agent.cycle().reachable
            assert elements(nft, "hosts_v4") == {"192.0.2.10"}
        got = [e for e in central.evidence(site.id) if e["check"] == CHECK]
        assert sorted(e["outcome"] for e in got) == ["alert", "alert", "compliant"]
    finally:
        agent.close()
