"""The egress allowlist refresh: the clinic's resolvers -> the ``inet osiris_egress`` nft sets.

Why the agent does it (not a shell timer): a failed refresh must leave evidence and open an
incident, and the names must be resolved through the configured resolvers ONLY — the system
resolver may be anything DHCP handed out, and port 53 to an arbitrary host is an exfiltration
path. Why one ``nft -f -`` batch: the sets change atomically or not at all. A host that fails to
resolve is left out of the batch, so its old elements stay until their timeout: a DNS outage
longer than ``entry_timeout_s`` closes the host (fail closed), a short one changes nothing.
Only addresses parsed by :mod:`ipaddress` ever reach nft; host names never do.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
from dataclasses import dataclass, field

import dns.exception
import dns.rdatatype
import dns.resolver

log = logging.getLogger("osiris.agent")

TABLE = "inet osiris_egress"
MAX_ANSWERS = 32  # per host and family: a huge answer would otherwise open the whole internet
NFT_TIMEOUT_S = 10.0


@dataclass
class HostResult:
    host: str
    v4: list[str] = field(default_factory=list)
    v6: list[str] = field(default_factory=list)
    reason: str | None = None  # set = failed
    refused: list[str] = field(default_factory=list)  # answers refused (loopback, …)

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass
class RefreshResult:
    hosts: list[HostResult]
    nft_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.nft_error is None and all(h.ok for h in self.hosts)

    def failures(self) -> dict[str, str]:
        out = {h.host: h.reason or "" for h in self.hosts if not h.ok}
        if self.nft_error is not None:
            out["(nft)"] = self.nft_error
        return out


def acceptable(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An answer the allowlist may hold: a unicast, routable-ish address (never 0.0.0.0,
    loopback, multicast, link-local: a poisoned answer must not open those)."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return None
    return ip


def make_resolver(resolvers: tuple[str, ...] | list[str], *, port: int = 53,
                  timeout_s: float = 3.0) -> dns.resolver.Resolver:  # fmt: skip
    """A resolver that knows only ``resolvers`` (``configure=False``: /etc/resolv.conf is never
    read)."""
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [str(ipaddress.ip_address(a)) for a in resolvers]
    r.port = port
    r.timeout = timeout_s
    r.lifetime = timeout_s
    r.cache = None
    return r


def resolve_host(resolver: dns.resolver.Resolver, host: str) -> HostResult:
    res = HostResult(host)
    errors: list[str] = []
    for rtype, bucket in (("A", res.v4), ("AAAA", res.v6)):
        try:
            answer = resolver.resolve(host, rtype, search=False)
        except dns.resolver.NoAnswer:
            continue
        except dns.resolver.NXDOMAIN:
            errors.append("NXDOMAIN")
            break
        except dns.resolver.NoNameservers:
            errors.append(f"{rtype}: no resolver answered (SERVFAIL or refused)")
            continue
        except dns.exception.Timeout:
            errors.append(f"{rtype}: resolver timeout")
            continue
        except dns.exception.DNSException as e:
            errors.append(f"{rtype}: {type(e).__name__}")
            continue
        seen: set[str] = set()
        for rr in answer:
            if rr.rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
                continue
            ip = acceptable(rr.to_text())
            if ip is None:
                res.refused.append(rr.to_text()[:64])
                continue
            if len(seen) >= MAX_ANSWERS:
                res.refused.append(f"{ip} (over {MAX_ANSWERS} answers)")
                continue
            if str(ip) not in seen:
                seen.add(str(ip))
                bucket.append(str(ip))
    if res.refused:
        log.warning("egress: %s: refused answers %s", host, res.refused[:5])
    if not res.v4 and not res.v6:
        res.reason = "; ".join(errors) or ("only refused answers" if res.refused else "no address")
    return res


def nft_batch(results: list[HostResult], entry_timeout_s: int) -> str:
    """The one atomic batch: an ``add element`` per resolved address (re-adding refreshes an
    existing element's timeout on current nft; failed hosts contribute nothing)."""
    t = int(entry_timeout_s)
    lines: list[str] = []
    for h in results:
        if not h.ok:
            continue
        for s, addrs in (("hosts_v4", h.v4), ("hosts_v6", h.v6)):
            for a in addrs:
                ip = ipaddress.ip_address(a)  # again: nothing unparsed reaches nft
                lines.append(f"delete element {TABLE} {s} {{ {ip} }}")
                lines.append(f"add element {TABLE} {s} {{ {ip} timeout {t}s }}")
    return "\n".join(lines) + ("\n" if lines else "")


def _existing(nft: str, set_name: str) -> set[str]:
    p = subprocess.run([nft, "-j", "list", "set", *TABLE.split(), set_name],
                       capture_output=True, text=True, timeout=NFT_TIMEOUT_S)  # fmt: skip
    if p.returncode != 0:
        return set()
    out: set[str] = set()
    for item in json.loads(p.stdout).get("nftables", []):
        for e in (item.get("set") or {}).get("elem", []):
            v = e.get("elem", {}).get("val", e) if isinstance(e, dict) else e
            if isinstance(v, str):
                out.add(v)
    return out


def apply_batch(results: list[HostResult], entry_timeout_s: int, nft: str = "nft") -> str | None:
    """Run the batch through ``nft -f -``; the error text (bounded) or ``None``. A delete of an
    element not in the set would fail the whole batch, so deletes are only emitted for elements
    present (delete + add = a fresh timeout, on any nft version)."""
    try:
        present = _existing(nft, "hosts_v4") | _existing(nft, "hosts_v6")
        batch = "\n".join(
            ln for ln in nft_batch(results, entry_timeout_s).splitlines()
            if not ln.startswith("delete") or ln.split("{ ")[1].split(" }")[0] in present
        )  # fmt: skip
        if not batch:
            return None
        p = subprocess.run([nft, "-f", "-"], input=batch + "\n", capture_output=True,
                           text=True, timeout=NFT_TIMEOUT_S)  # fmt: skip
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return f"nft: {type(e).__name__}: {e}"[:300]
    if p.returncode != 0:
        return f"nft exit {p.returncode}: {p.stderr.strip()}"[:300]
    return None


def refresh(hosts: tuple[str, ...] | list[str], resolvers: tuple[str, ...] | list[str],
            entry_timeout_s: int, *, port: int = 53, timeout_s: float = 3.0,
            nft: str = "nft") -> RefreshResult:  # fmt: skip
    """Resolve every host through ``resolvers`` only, then update the sets in one batch."""
    if not resolvers:
        return RefreshResult([HostResult(h, reason="no resolvers configured") for h in hosts])
    resolver = make_resolver(resolvers, port=port, timeout_s=timeout_s)
    results = [resolve_host(resolver, h) for h in hosts]
    if not any(r.ok for r in results):
        return RefreshResult(results)
    return RefreshResult(results, apply_batch(results, entry_timeout_s, nft))
