"""Each partner's alert threshold: the lowest severity whose new incidents alert (issue 16).

Stored on the partner row (migration 14), on the one scale of ``osiris_core/severity.py``. A
site without a partner (the MSP's own) and a partner never configured use the default,
``high``: high and critical alert.
"""

from __future__ import annotations

from osiris_core import severity
from osiris_server.db.engine import Database, Writer


def for_partner(db: Database | Writer, partner_id: str) -> str | None:
    """The partner's threshold (None: no such partner)."""
    v = db.scalar("SELECT alert_threshold FROM partners WHERE id = ?", [partner_id])
    return None if v is None else str(v)


def for_site(db: Database | Writer, site_id: str) -> str:
    """The threshold that applies to incidents of ``site_id``."""
    v = db.scalar(
        "SELECT p.alert_threshold FROM sites s JOIN partners p ON p.id = s.partner_id"
        " WHERE s.id = ?",
        [site_id],
    )
    return str(v) if severity.is_severity(v) else severity.DEFAULT_ALERT_THRESHOLD


def alerts(db: Database | Writer, site_id: str, sev: str) -> bool:
    """Whether a new incident of ``sev`` at ``site_id`` alerts."""
    return severity.at_least(sev, for_site(db, site_id))


def set_for_partner(w: Writer, partner_id: str, threshold: str) -> bool:
    """Set it (already validated); False when nothing changed."""
    return (
        w.execute(
            "UPDATE partners SET alert_threshold = ? WHERE id = ? AND alert_threshold <> ?",
            [threshold, partner_id, threshold],
        )
        > 0
    )
