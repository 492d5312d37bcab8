"""`osiris site contact add|list|remove` against the shared live server: stable --json keys, the
API's refusals as exit codes with one error line, and removal only with --yes off a terminal."""

from __future__ import annotations

import json

from tests.tui.test_cli import run

KEYS = {"id", "site_id", "email", "name", "created_by", "created_at"}


def test_add_list_remove(live) -> None:
    r = run(live, "site", "contact", "add", "riverside", "--email", "Office@Riverside.example",
            "--name", "Pat", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    added = json.loads(r.stdout)
    assert set(added) == KEYS and added["email"] == "office@riverside.example"
    r = run(live, "site", "contact", "list", "riverside", "--json")
    rows = json.loads(r.stdout)
    assert [c["email"] for c in rows] == ["office@riverside.example"]
    assert all(set(c) == KEYS for c in rows)
    r = run(live, "site", "contact", "add", "riverside", "--email", "office@riverside.example")
    assert r.returncode != 0 and r.stderr.startswith("osiris: error: ") and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "already" in r.stderr
    r = run(live, "site", "contact", "add", "riverside", "--email", "not-an-address")
    assert r.returncode == 2 and "e-mail" in r.stderr
    r = run(live, "site", "contact", "remove", "riverside", added["id"])
    assert r.returncode == 2 and "--yes" in r.stderr  # no terminal to confirm on
    r = run(live, "site", "contact", "remove", "riverside", added["id"], "--yes", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"removed": added["id"]}
    r = run(live, "site", "contact", "list", "riverside")
    assert r.stdout.splitlines() == ["ID\tEMAIL\tNAME\tSINCE\tBY"]
