"""Change counters ("generations") that make per-site caches safe across processes.

Why: a check-in needs the site's row, its credential rows and its runbook toggles; reading
them on every check-in costs more than the rest of the request. Caching them in memory is only
correct if every change is seen at the very next check-in — also when the change was made by
another process (several gunicorn workers, or ``osiris-server`` commands run beside the
server). So every write to those rows bumps ``cache_gen[scope]`` *in the same transaction*,
and a reader compares one integer (a primary-key read) before trusting its cache.

Scopes: ``site:<id>`` (the site row, its credentials, its site-level toggles) and
``appliance:<id>`` (that appliance's own toggles). Absent row = generation 0.
The SQL (``ON CONFLICT … DO UPDATE``) is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from osiris_server.db.engine import Database, Writer


def site_scope(site_id: str) -> str:
    return f"site:{site_id}"


def appliance_scope(appliance_id: str) -> str:
    return f"appliance:{appliance_id}"


def bump(w: Writer, scope: str) -> None:
    """Mark ``scope`` changed; call inside the transaction that changes its rows."""
    w.execute(
        "INSERT INTO cache_gen (scope, gen) VALUES (?, 1)"
        " ON CONFLICT (scope) DO UPDATE SET gen = cache_gen.gen + 1",
        [scope],
    )


def read_two(db: Database, first: str, second: str) -> tuple[int, int]:
    """Current generations of two scopes in one statement (0 for a scope never changed)."""
    rows = db.query("SELECT scope, gen FROM cache_gen WHERE scope IN (?, ?)", [first, second])
    got = {r["scope"]: int(r["gen"]) for r in rows}
    return got.get(first, 0), got.get(second, 0)
