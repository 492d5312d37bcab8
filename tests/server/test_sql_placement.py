"""SQL lives in ``osiris_server/db/`` (and the log's own store), nowhere else in the server.

Why: the index runs on two engines. A statement in ``db/`` is read by whoever ports SQL and
is run by ``tests/server/test_storage_engines.py`` on both; one left in a handler is where
PostgreSQL's strictness (types, GROUP BY, quoting) would first bite in production. The scan
reads every string literal (f-string parts too) of ``osiris_server/api/*.py``, ``app.py`` and
``cli.py`` — log storage (``log.py``, ``logstore/``) and ``storage/`` are the stores themselves.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "osiris_server"
# upper-case keywords, as every statement here is written: prose ("select a site") is not SQL
SQL = re.compile(
    r"\b(SELECT\b.*\bFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s)", re.S
)


def _files() -> list[Path]:
    return [*sorted((ROOT / "api").glob("*.py")), ROOT / "app.py", ROOT / "cli.py"]


def sql_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal in ``source`` that reads as a SQL statement."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SQL.search(node.value):
                hits.append((node.lineno, node.value[:80]))
    return sorted(hits)


def test_the_scan_finds_planted_sql_and_ignores_prose() -> None:
    planted = (
        'x = db.one("SELECT id FROM partners WHERE id = ?", [p])\n'
        'y = w.execute(f"UPDATE appliances SET signing_vkey = ? WHERE id = {i}")\n'
        'z = "INSERT INTO audit (id) VALUES (1)"\n'
        'w.execute("DELETE FROM tokens WHERE id = ?")\n'
        'route = ("DELETE", "/api/v1/tokens/{id}")\n'
        'doc = "select a site from the list, then update it"\n'
    )
    assert [line for line, _ in sql_literals(planted)] == [1, 2, 3, 4]


def test_no_sql_outside_the_db_modules() -> None:
    found = {
        f"{p.relative_to(ROOT.parent)}:{line}": text
        for p in _files()
        for line, text in sql_literals(p.read_text())
    }
    assert not found, f"SQL outside osiris_server/db/ (move it into a named db function): {found}"
