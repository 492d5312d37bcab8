"""The portal's status page for one site: the last 30 days of its bundles through the packet
report's own builder (osiris_server/portal/views.py), as a page view computes it.

Budget: none in DESIGN §5 yet; the figure is printed beside the floor measured in this same run
on these same cores — parsing the same envelopes' canonical JSON and nothing else (every page
must at least read every bundle of the window) — so what the report model costs on top shows.
The page caches its status per site for ``views.CACHE_S`` seconds, so a contact refreshing it
pays this once per interval, not per request.

The evidence is synthetic but real (``osiris_core.synth``: real keys, chains and a signed log),
two appliances round-robin, a bundle every ``BENCH_PORTAL_STEP_S`` seconds over 30 days
(default 130 s → about 20,000 bundles; 25 s is DESIGN's busy clinic, about 100,000).

Usage: ``python bench/portal.py`` (env ``BENCH_PORTAL_STEP_S``).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from osiris_core import canonical  # noqa: E402
from osiris_core.report import build_report  # noqa: E402
from osiris_core.synth import make_export  # noqa: E402

STEP_S = int(os.environ.get("BENCH_PORTAL_STEP_S", "130"))


def main() -> int:
    end = datetime(2026, 12, 1, tzinfo=UTC)
    start = end - timedelta(days=30)
    n = 30 * 86400 // STEP_S
    t = time.perf_counter()
    ex = make_export(n, 2, start=start, step_s=STEP_S)
    print(f"synthesised {len(ex.envelopes)} bundles in {time.perf_counter() - t:.1f} s "
          "(not part of either figure)")  # fmt: skip
    raw = [canonical.dumps(e) for e in ex.envelopes]
    t = time.perf_counter()
    parsed = [canonical.loads(b) for b in raw]
    floor = time.perf_counter() - t
    period = (canonical.format_time(start), canonical.format_time(end))
    t = time.perf_counter()
    bundles = [canonical.loads(b)["bundle"] for b in raw]
    report = build_report(
        bundles=bundles, period=period, month=None, site_id=ex.site_id, population=[],
        appliances=sorted(ex.appliances), checkpoint_note=ex.checkpoint, checkpoint_size=n,
        tool_version="bench",
    )  # fmt: skip
    page = time.perf_counter() - t
    assert report["controls"] and len(parsed) == len(bundles)
    print(f"portal status, {len(bundles)} bundles: {page:.2f} s "
          f"({page / len(bundles) * 1e6:.0f} us/bundle)")  # fmt: skip
    print(f"  floor (parse the same envelopes only): {floor:.2f} s on {os.cpu_count()} cores; "
          f"the report model adds {page - floor:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
