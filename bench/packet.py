"""Packet build and verify for one site, one 30-day month, about 100,000 bundles (DESIGN §5).

Budget: build ≤ 60 s and verify ≤ 60 s, each printed beside the limit measured in this same run
on these same cores: raw PyNaCl Ed25519 verify of as many signatures as the packet holds, on one
core and on all of them (the verifier's floor — every bundle's signature must be checked; a
verify far above the raw figure spends its time elsewhere, which is what this bench is for).

The evidence is synthetic but real (``osiris_core.synth``: real keys, chains, Merkle log, signed
and cosigned checkpoint, one inclusion proof per bundle), two appliances round-robin, a bundle
every ``BENCH_PACKET_STEP_S`` seconds (default 25 s → 103,680 bundles in November 2026) plus each
appliance's start and end boundary. Build runs exactly what ``osiris packet build`` runs after
its pull (``build_packet`` with the report.html / report.pdf renderers, and the expected
population: each appliance's host); verify is ``osiris evidence verify --packet`` with the
keys pinned from outside the packet (``verify_packet``), strict.

Usage: ``python bench/packet.py`` (env ``BENCH_PACKET_STEP_S``, ``BENCH_PACKET_APPLIANCES``).
Synthesising the evidence takes a few minutes on a 2-core box; it is not part of either figure.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.verify import raw_verify_per_s  # noqa: E402
from osiris_core.packet import build_packet, month_period  # noqa: E402
from osiris_core.synth import make_export  # noqa: E402
from osiris_core.trust import TrustRoots, load_trust_item  # noqa: E402
from osiris_tui.report import RENDERERS  # noqa: E402

MONTH = "2026-11"
STEP_S = int(os.environ.get("BENCH_PACKET_STEP_S", "25"))
APPLIANCES = int(os.environ.get("BENCH_PACKET_APPLIANCES", "2"))
BUDGET_S = 60.0


def main() -> int:
    from osiris_core.packet import verify_packet

    cores = os.cpu_count() or 1
    period = month_period(MONTH)
    month_s = 30 * 86400
    in_period = -(-month_s // STEP_S)  # bundles at Nov 1 + k * STEP_S, k = 0 .. < 30 days
    # one bundle per appliance before the period (start boundary) and after it (end boundary)
    start = datetime(2026, 11, 1, tzinfo=UTC) - timedelta(seconds=APPLIANCES * STEP_S)
    n = in_period + 2 * APPLIANCES
    t = time.perf_counter()
    ex = make_export(n, APPLIANCES, start=start, step_s=STEP_S, site_id="site-bench")
    synth_s = time.perf_counter() - t
    roots = TrustRoots()
    load_trust_item(ex.pins(), "pinned keys", roots)
    with tempfile.TemporaryDirectory() as tmp:
        export = ex.write(Path(tmp) / "export")
        out = Path(tmp) / "packet.zip"
        t = time.perf_counter()
        expected = [
            {"host_id": f"{app}-dc01", "platform": "windows", "source": "site target"}
            for app in ex.appliances
        ]
        manifest = build_packet(
            export, out, site_id="site-bench", period=period, month=MONTH,
            population_expected=expected, renderers=RENDERERS,
        )  # fmt: skip
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        report = verify_packet(out, trust=roots)
        verify_s = time.perf_counter() - t
        size = out.stat().st_size
    if not report.ok(strict=True):
        for f in report.findings[:20]:
            print(f"  {f}", file=sys.stderr)
        print("packet bench: the packet did not verify", file=sys.stderr)
        return 1
    bundles = manifest["bundles"]
    raw1 = raw_verify_per_s(1, n)
    rawn = raw_verify_per_s(cores, max(1, n // cores)) if cores > 1 else raw1
    print(
        f"packet: site-bench, {MONTH}, {bundles:,} bundles in the period ({n:,} with boundaries),"
        f" {APPLIANCES} appliances, zip {size / 1e6:.1f} MB (synthesised in {synth_s:.0f} s)"
    )
    print(f"  this machine: {cores} cores (os.cpu_count); the limits run on the same cores")
    print(
        f"  limit: raw Ed25519 verify of {n:,} signatures: {n / raw1:6.1f} s on 1 core,"
        f" {n / rawn:6.1f} s on {cores} cores"
    )
    for what, took in (("build", build_s), ("verify", verify_s)):
        verdict = "OK" if took <= BUDGET_S else "OVER BUDGET"
        print(
            f"  {what:6}: {took:6.1f} s  ({bundles / took:8,.0f} bundles/s; "
            f"{took / (n / rawn):4.1f}x the raw-verify limit)"
            f"  budget <= {BUDGET_S:.0f} s: {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
