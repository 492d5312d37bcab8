"""Reading back a site's signed statements (activity reviews, risk acceptances) and the
``record_attestation`` orders still on their way to the appliance.

Why its own module: the statements are read from the evidence index (the signed bundles are the
truth, not the order rows), and the orders that have not produced one yet from ``orders``;
both answers are per site and per statement kind, which neither of those modules' callers need.
"""

from __future__ import annotations

import json
from typing import Any

from osiris_server.db import orders as db_orders
from osiris_server.db.engine import Database


def statements(db: Database, site_id: str, check: str) -> list[dict[str, Any]]:
    """Index rows of the site's ``check`` bundles (``activity_review`` / ``risk_acceptance``)
    still in the log (a pruned row's leaf data is gone), oldest first."""
    return db.query(
        "SELECT bundle_hash, log_index, appliance_id, seq, outcome, order_id, finished_at"
        " FROM evidence WHERE site_id = ? AND check_id = ? AND pruned_id IS NULL"
        " ORDER BY finished_at, appliance_id, seq",
        [site_id, check],
    )


def orders(db: Database, site_id: str, statement: str) -> list[dict[str, Any]]:
    """The site's ``record_attestation`` orders of one statement kind, newest first (status as
    ``db.orders`` reports it: pending, delivered, done or expired)."""
    rows = db.query(
        f"SELECT {db_orders.COLS} FROM orders WHERE site_id = ? AND kind = 'record_attestation'"
        " ORDER BY created_at DESC, id",
        [site_id],
    )
    out = []
    for r in rows:
        if json.loads(r["params_json"]).get("kind") == statement:
            row = db_orders._out(r)
            row.pop("envelope")  # the signed copy is the appliance's business; params say it all
            out.append(row)
    return out
