"""What a portal page shows, read from the index and the log the API serves.

Why the packet report's own builder (``osiris_core.report.build_report``): the practice
manager must read the same verdicts the auditor's packet will carry. The status covers the
last ``WINDOW_DAYS`` whole days up to now, over every bundle the log holds for the site in
that window; a control with missing days is ``partially_met`` and one with no evidence
``not_evidenced`` — never a pass for missing data. Computed at most once per
``CACHE_S`` per site (a clinic's month is a few thousand bundles; a contact refreshing the page
cannot make the server rebuild it on every request).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_core.report import PLATFORM_OF_KIND, build_report
from osiris_server.db import appliances as db_appliances
from osiris_server.db import branding as db_branding
from osiris_server.db import credentials as db_credentials
from osiris_server.db import evidence as db_evidence
from osiris_server.db import incidents as db_incidents
from osiris_server.db import packets as db_packets
from osiris_server.db import tenants as db_tenants

if TYPE_CHECKING:
    from osiris_server.app import App

WINDOW_DAYS = 30
CACHE_S = 30.0
_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()

STATUS_WORD = {
    "met": ("✓", "Met"),
    "partially_met": ("◐", "Partially met"),
    "not_met": ("✕", "Not met"),
    "not_evidenced": ("?", "Not evidenced"),
}


def _period(now: datetime) -> tuple[str, str]:
    end = now.replace(microsecond=0)
    start = (end - timedelta(days=WINDOW_DAYS)).replace(hour=0, minute=0, second=0)
    return canonical.format_time(start), canonical.format_time(end)


def status_report(app: App, site_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The ``osiris.packet-report/1`` dict of the window (see the module docstring)."""
    key = site_id  # per site, not per log size: every ingest anywhere grows the log
    t = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] > t and now is None:
            return hit[1]
    period = _period(now or datetime.now(UTC))
    bundles = []
    for idx in db_evidence.log_indices_since(app.db, site_id, period[0]):
        env = canonical.loads(app.log.entry(idx))
        bundles.append(env["bundle"])
    pop: dict[str, dict[str, Any]] = {}
    for c in db_credentials.for_site(app.db, site_id):
        pop.setdefault(c["host_id"], {"host_id": c["host_id"], "source": "site target",
                                      "platform": PLATFORM_OF_KIND.get(c.get("kind"))})  # fmt: skip
    appliances = [a["id"] for a in db_appliances.list_for_sites(app.db, [site_id])
                  if not a.get("revoked_at")]  # fmt: skip
    cp = app.log.latest_checkpoint()
    report = build_report(
        bundles=bundles, period=period, month=None, site_id=site_id,
        population=[pop[h] for h in sorted(pop)], appliances=appliances,
        checkpoint_note=cp.note if cp else "osiris\n0\n\n", checkpoint_size=cp.size if cp else 0,
        tool_version="portal",
    )  # fmt: skip
    with _lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[key] = (t + CACHE_S, report)
    return report


def day_series(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per day of the window: how many hosts were ok (or healed), had a finding, or had no
    evidence — the packet heat map's cells counted by day, for the compliance-over-time chart."""
    days = report["period"]["days"]
    grid = report["heatmap"]["cells"]
    out = []
    for i, d in enumerate(days):
        col = [row[i] for row in grid if i < len(row)]
        out.append({
            "day": d, "ok": sum(1 for c in col if c in ("ok", "healed")),
            "finding": col.count("finding"), "missing": col.count("missing"), "hosts": len(col),
        })  # fmt: skip
    return out


def dashboard(app: App, site_id: str) -> dict[str, Any]:
    site = db_tenants.get_site(app.db, site_id) or {"id": site_id, "name": site_id}
    report = status_report(app, site_id)
    interval = int(site.get("checkin_interval_s") or 60)
    app.heartbeats.flush()
    appliances = []
    for a in db_appliances.list_for_sites(app.db, [site_id]):
        if a.get("revoked_at"):
            continue
        seen = a.get("last_seen_epoch")
        online = seen is not None and seen >= int(time.time()) - 3 * interval
        appliances.append({"hostname": a["hostname"], "id": a["id"],
                           "last_seen_at": a.get("last_seen_at"), "online": online})  # fmt: skip
    incidents = db_incidents.list_rows(app.db, [site_id], "open", 200)
    exceptions = [e for e in report["exceptions"] if e["status"] in ("open", "escalated",
                                                                      "accepted")]  # fmt: skip
    controls = []
    for c in report["controls"]:
        glyph, word = STATUS_WORD.get(c["status"], ("?", c["status"]))
        controls.append({**c, "glyph": glyph, "word": word})
    brand = None
    if site.get("partner_id"):
        brand = db_branding.get(app.db, site["partner_id"])
    return {
        "site": site,
        "report": report,
        "controls": controls,
        "series": day_series(report),
        "appliances": appliances,
        "incidents": incidents,
        "exceptions": exceptions,
        "packets": [p for p in db_packets.for_site(app.db, site_id, 60)],
        "brand": brand,
    }
