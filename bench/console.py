"""Console budgets (DESIGN §5): first paint and a filtered view with 10,000 appliances.

Prints each figure beside its budget and beside an empty console's start measured in the same
run. The data comes from a fixed in-process client (tests/tui/fixtures.py) so the figure measures
the console, not the network: the real server answers /appliances for 10,000 rows separately.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osiris_tui.app import OsirisApp  # noqa: E402
from tests.tui.fixtures import NOW, RecordedClient, fleet  # noqa: E402

N = 10_000
FIRST_PAINT_BUDGET_S = 1.0
FILTER_BUDGET_S = 0.100


async def measure(n: int, query: str | None) -> tuple[float, float | None, int]:
    client = RecordedClient(fleet(n, sites=max(3, n // 40)) if n else {
        "sites": [], "appliances": [], "incidents": []})  # fmt: skip
    t0 = time.perf_counter()
    app = OsirisApp(client=client, clock=lambda: float(NOW), poll_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#appliances")
        while n and table.row_count < min(n, 1000):
            await asyncio.sleep(0.005)
        await pilot.pause()
        first = time.perf_counter() - t0
        filt = None
        if query:
            f = app.screen.query_one("#filter")
            t1 = time.perf_counter()
            f.value = query
            await pilot.pause()
            filt = time.perf_counter() - t1
        rows = table.row_count
    return first, filt, rows


def main() -> int:
    empty, _, _ = asyncio.run(measure(0, None))
    first, filt, rows = asyncio.run(measure(N, "appliance-1042"))
    ok = first <= FIRST_PAINT_BUDGET_S and (filt or 0) <= FILTER_BUDGET_S
    print(f"console empty start:                {empty * 1000:7.0f} ms   (reference)")
    print(f"console first paint, {N} appliances: {first * 1000:7.0f} ms   budget "
          f"{FIRST_PAINT_BUDGET_S * 1000:.0f} ms")  # fmt: skip
    print(f"filter to {rows} rows of {N}:          {filt * 1000:7.1f} ms   budget "
          f"{FILTER_BUDGET_S * 1000:.0f} ms")  # fmt: skip
    print("console: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
