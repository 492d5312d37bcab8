"""The egress refresh against a real UDP DNS responder and real nft in a private netns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from osiris_agent import egress
from osiris_lab.dns_responder import DnsResponder

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "nix/modules/osiris-agent.nix"

# The sets exactly as nix/modules/osiris-agent.nix declares them (asserted below).
SETS = [
    "set hosts_v4 { type ipv4_addr; flags interval, timeout; ",
    "set hosts_v6 { type ipv6_addr; flags interval, timeout; ",
]
TABLE = (
    "table inet osiris_egress {\n"
    "  set hosts_v4 { type ipv4_addr; flags interval, timeout; }\n"
    "  set hosts_v6 { type ipv6_addr; flags interval, timeout; }\n"
    "}\n"
)


def test_table_matches_module() -> None:
    text = MODULE.read_text()
    for s in SETS:
        assert s in text


@pytest.fixture
def nft(tmp_path: Path):
    """An ``nft`` that runs inside a private network namespace holding the real table."""
    if os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None:
        pytest.skip("needs root, nft (apt nftables) and ip netns")
    ns = f"osiris-t-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    try:
        wrapper = tmp_path / "nft"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} nft "$@"\n')
        wrapper.chmod(0o700)
        subprocess.run([str(wrapper), "-f", "-"], input=TABLE, text=True, check=True)
        yield str(wrapper)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def elements(nft: str, set_name: str) -> set[str]:
    p = subprocess.run([nft, "-j", "list", "set", "inet", "osiris_egress", set_name],
                       capture_output=True, text=True, check=True)  # fmt: skip
    out: set[str] = set()
    for item in json.loads(p.stdout)["nftables"]:
        for e in (item.get("set") or {}).get("elem", []):
            out.add(e["elem"]["val"] if isinstance(e, dict) else e)
    return out


def test_resolves_only_through_configured_resolvers(nft: str) -> None:
    records = {
        "api.example.test": ["192.0.2.10", "2001:db8::10"],
        "ntp.example.test": ["198.51.100.7"],
    }
    with DnsResponder(records) as good, DnsResponder(records) as other:
        assert good.port != other.port
        r = egress.refresh(["api.example.test", "ntp.example.test"], ["127.0.0.1"], 600,
                           port=good.port, timeout_s=1.0, nft=nft)  # fmt: skip
        assert r.ok, r.failures()
        assert ("api.example.test", "A") in good.queries
        assert ("api.example.test", "AAAA") in good.queries
        assert other.queries == []  # the unconfigured resolver is never asked
    assert elements(nft, "hosts_v4") == {"192.0.2.10", "198.51.100.7"}
    assert elements(nft, "hosts_v6") == {"2001:db8::10"}
    # a second refresh re-adds the same elements (fresh timeout) without an error
    with DnsResponder(records) as good:
        r = egress.refresh(["api.example.test"], ["127.0.0.1"], 600, port=good.port,
                           timeout_s=1.0, nft=nft)  # fmt: skip
        assert r.ok, r.failures()
    assert "192.0.2.10" in elements(nft, "hosts_v4")


@pytest.mark.parametrize("mode", ["NXDOMAIN", "SERVFAIL", "SILENT"])
def test_failure_keeps_old_elements(nft: str, mode: str) -> None:
    with DnsResponder({"api.example.test": ["192.0.2.10"], "b.example.test": ["192.0.2.20"]}) as d:
        assert egress.refresh(["api.example.test", "b.example.test"], ["127.0.0.1"], 600,
                              port=d.port, timeout_s=1.0, nft=nft).ok  # fmt: skip
        d.records["api.example.test"] = mode
        d.records["b.example.test"] = ["192.0.2.21"]
        r = egress.refresh(["api.example.test", "b.example.test"], ["127.0.0.1"], 600,
                           port=d.port, timeout_s=0.5, nft=nft)  # fmt: skip
    assert not r.ok
    fails = r.failures()
    assert set(fails) == {"api.example.test"}
    want = {"NXDOMAIN": "NXDOMAIN", "SERVFAIL": "SERVFAIL", "SILENT": "timeout"}[mode]
    assert want in fails["api.example.test"]
    # the failed host's old element is kept; the good host's new one is added
    assert elements(nft, "hosts_v4") == {"192.0.2.10", "192.0.2.20", "192.0.2.21"}


def test_poisoned_and_huge_answers_refused(nft: str) -> None:
    bad = ["0.0.0.0", "127.0.0.1", "224.0.0.1", "169.254.1.1"]
    many = [f"203.0.113.{i}" for i in range(1, 101)]
    with DnsResponder({"evil.example.test": bad, "big.example.test": many}) as d:
        r = egress.refresh(["evil.example.test", "big.example.test"], ["127.0.0.1"], 600,
                           port=d.port, timeout_s=1.0, nft=nft)  # fmt: skip
    evil, big = r.hosts
    assert not evil.ok and evil.v4 == [] and len(evil.refused) == 4
    assert big.ok and len(big.v4) == egress.MAX_ANSWERS
    got = elements(nft, "hosts_v4")
    assert not got & set(bad)
    assert len(got) == egress.MAX_ANSWERS


def test_nft_error_reported(tmp_path: Path) -> None:
    with DnsResponder({"api.example.test": ["192.0.2.10"]}) as d:
        r = egress.refresh(["api.example.test"], ["127.0.0.1"], 600, port=d.port,
                           timeout_s=1.0, nft=str(tmp_path / "no-such-nft"))  # fmt: skip
    assert not r.ok and "(nft)" in r.failures()


def test_batch_holds_only_parsed_addresses() -> None:
    h = egress.HostResult("x;flush ruleset", v4=["192.0.2.1"])
    batch = egress.nft_batch([h], 600)
    assert "flush" not in batch and "x;" not in batch
    with pytest.raises(ValueError):
        egress.nft_batch([egress.HostResult("x", v4=["1.2.3.4 }; flush ruleset; {"])], 600)


def test_no_resolvers_fails_closed() -> None:
    r = egress.refresh(["api.example.test"], [], 600)
    assert not r.ok and "no resolvers" in r.failures()["api.example.test"]
