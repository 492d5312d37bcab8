"""The backup/restore drill on both engines, with real processes (docs/server.md, "Backup and
restore").

SQLite: evidence flows into a running server while `osiris-server backup` copies it; the
archive is restored into a new data dir, which refuses to serve until its keys are copied back;
then the restored server's log root equals the original's at that size and every stored receipt
verifies — checked here from the envelope bytes up, not by the code under test. Hostile
archives are refused with nothing written. PostgreSQL: `pg_dump -Fc` of the live database,
`pg_restore` into a fresh one, the same checks. A leaf edited after a restore: `log verify`
exits 1 and `serve --verify-log` refuses to start.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import Appliance, Server
from tests.server.serverproc import ServerProc, check_receipts, run_cli, verified_checkpoint

_DB_NAMES = iter(range(1, 10**9))


def _init(data: Path, db_url: str | None = None) -> dict[str, str]:
    args = ["init", "--data", str(data), "--json"]
    if db_url:
        args += ["--db", db_url]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    with open(data / "server.toml", "a") as f:
        f.write("checkpoint_interval_s = 0.02\n")
    return json.loads(r.stdout)


def _client(srv: ServerProc, data: Path, info: dict[str, str]) -> Server:
    return Server(url=srv.url, app=None, data=data, admin_token=info["admin_token"], init=info)  # type: ignore[arg-type]


def _ingest(s: Server, a: Appliance, batches: int, per: int = 6) -> list[str]:
    c = s.client(a.token)
    acked = []
    for _ in range(batches):
        r = c.post("/api/v1/evidence", json={"envelopes": [a.envelope() for _ in range(per)]})
        assert r.status_code == 200, r.text
        acked += [x["bundle_hash"] for x in r.json()["results"] if x["status"] == "accepted"]
    return acked


def _pump(s: Server, a: Appliance, stop: threading.Event, acked: list[str]) -> None:
    """Keep ingesting until told to stop (the server is being backed up meanwhile)."""
    while not stop.is_set():
        acked += _ingest(s, a, 1, 4)


def _original_root(srv: ServerProc, token: str, size: int) -> bytes:
    r = httpx.get(
        srv.url + "/api/v1/log/checkpoint",
        params={"size": size},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["note"]


def _copy_keys(src: Path, dst: Path) -> None:
    shutil.copytree(src / "keys", dst / "keys")  # copy2: modes kept (0700 dir, 0600 keys)


def _edit_leaf(entry: bytes) -> bytes:
    """What a forger would do to a stored bundle: flip its outcome, keep it valid JSON."""
    assert b'"compliant"' in entry
    return entry.replace(b'"compliant"', b'"drift"', 1)


def _assert_tamper_caught(data: Path, *db: str) -> None:
    r = run_cli("log", "verify", "--data", str(data), *db, "--json")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["ok"] is False
    assert any("leaf 3" in p for p in out["problems"]), out["problems"]
    r = run_cli("serve", "--data", str(data), *db, "--listen", "127.0.0.1:0", "--verify-log")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "fails its full check" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------- SQLite


def test_sqlite_backup_while_serving_restore_and_verify(tmp_path: Path) -> None:
    data = tmp_path / "orig"
    info = _init(data)
    srv = ServerProc(data)
    try:
        s = _client(srv, data, info)
        site = s.site()
        a = s.enroll(site["id"])
        before = _ingest(s, a, 5)
        stop, during = threading.Event(), []
        t = threading.Thread(target=_pump, args=(s, a, stop, during))
        t.start()
        try:
            bak = tmp_path / "osiris.tar.gz"
            r = run_cli("backup", "--data", str(data), "--out", str(bak))
            # the audit reads a live log too: what is appended meanwhile is no mismatch
            live = run_cli("log", "verify", "--data", str(data), "--json")
        finally:
            stop.set()
            t.join(30)
        assert r.returncode == 0, r.stderr
        assert during, "no evidence arrived while the backup ran"
        assert live.returncode == 0, live.stdout + live.stderr
        assert stat.S_IMODE(bak.stat().st_mode) == 0o600

        new = tmp_path / "restored"
        r = run_cli("restore", "--from", str(bak), "--data", str(new), "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["ok"] and out["evidence"] >= len(before) and out["signature"] == "unchecked"
        assert stat.S_IMODE(new.stat().st_mode) == 0o700
        for name in ("osiris.db", "log.db", "server.toml"):
            assert stat.S_IMODE((new / name).stat().st_mode) == 0o600, name
        assert not (new / "keys").exists()

        # the keys are not in a backup: the server says so instead of starting half-broken
        r = run_cli("serve", "--data", str(new), "--listen", "127.0.0.1:0")
        assert r.returncode == 2, r.stderr
        assert "keys" in r.stderr and "missing" in r.stderr and "Traceback" not in r.stderr

        _copy_keys(data, new)
        r = run_cli("log", "verify", "--data", str(new), "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["signature"] == "verified"

        srv2 = ServerProc(new, "--verify-log")
        try:
            size, root, n = check_receipts(
                srv2.url, info["admin_token"], site["id"], a.id, info["log_vkey"]
            )
            assert size == out["checkpoint_size"] and n == out["evidence"] >= len(before)
            # the same tree the original signed at that size (its log kept growing since)
            orig = verified_checkpoint(
                _original_root(srv, info["admin_token"], size), info["log_vkey"]
            )
            assert orig.root == root
            # every bundle acknowledged before the backup started is in the restored log
            got = {row["bundle_hash"] for row in _rows(srv2, info["admin_token"], site["id"])}
            assert set(before) <= got
        finally:
            srv2.stop()
    finally:
        srv.stop()

    # a leaf edited in the restored log: the audit finds it, the server will not start on it
    conn = sqlite3.connect(new / "log.db")
    (entry,) = conn.execute("SELECT entry FROM leaves WHERE idx = 3").fetchone()
    conn.execute("UPDATE leaves SET entry = ? WHERE idx = 3", (_edit_leaf(bytes(entry)),))
    conn.commit()
    conn.close()
    _assert_tamper_caught(new)


def _rows(srv: ServerProc, token: str, site_id: str) -> list[dict[str, Any]]:
    r = httpx.get(
        srv.url + "/api/v1/evidence",
        params={"site": site_id, "limit": 1000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["evidence"]


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A stopped server's data dir (keys included) holding 12 bundles of one appliance."""
    data = tmp_path_factory.mktemp("bk") / "d"
    info = _init(data)
    srv = ServerProc(data)
    try:
        s = _client(srv, data, info)
        a = s.enroll(s.site()["id"])
        _ingest(s, a, 2)
    finally:
        srv.stop()
    return data, info


@pytest.fixture(scope="module")
def good_backup(good_dir: tuple[Path, dict[str, str]]) -> dict[str, bytes]:
    """The members of a real backup of ``good_dir``, to build archives from."""
    bak = good_dir[0].parent / "b.tar.gz"
    r = run_cli("backup", "--data", str(good_dir[0]), "--out", str(bak))
    assert r.returncode == 0, r.stderr
    with tarfile.open(bak) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _resign(conn: sqlite3.Connection) -> None:
    """The newest checkpoint's note re-signed by a key of the same name that is not the log's."""
    from osiris_core import note
    from osiris_core.keys import Signer

    size, text = conn.execute("SELECT size, note FROM checkpoints ORDER BY size DESC").fetchone()
    body = text[: text.rfind("\n\n") + 1]
    origin = note.Checkpoint.parse(body).origin
    forged = note.sign_note(body, [Signer.generate(origin)])
    conn.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (forged, size))


def _entry_and_leaf_hash(conn: sqlite3.Connection) -> None:
    """A careful forger: the entry edited and its leaf hash recomputed to match."""
    from osiris_core import tlog

    (entry,) = conn.execute("SELECT entry FROM leaves WHERE idx = 3").fetchone()
    forged = _edit_leaf(bytes(entry))
    conn.execute(
        "UPDATE leaves SET entry = ?, leaf_hash = ? WHERE idx = 3", (forged, tlog.leaf_hash(forged))
    )


EDITS = {
    # name: (database, edit, what log verify must say)
    "entry": ("log.db", lambda c: c.execute(
        "UPDATE leaves SET entry = entry || x'20' WHERE idx = 3"),
        "leaf 3: its entry does not hash to its stored leaf hash"),
    "entry_and_leaf_hash": ("log.db", _entry_and_leaf_hash,
        "stored subtree hash at level 1 index 1 is wrong"),
    "gap": ("log.db", lambda c: c.execute("DELETE FROM leaves WHERE idx = 5"),
        "leaf indices have a gap: expected 5, found 6"),
    "lost_tail": ("log.db", lambda c: c.execute("DELETE FROM leaves WHERE idx >= 10"),
        "beyond the 10 stored leaves"),
    "checkpoint_root": ("log.db", lambda c: c.execute(
        "UPDATE checkpoints SET root = zeroblob(32)"
        " WHERE size = (SELECT MAX(size) FROM checkpoints)"),
        "its note disagrees with its row"),
    "checkpoint_signature": ("log.db", _resign,
        "its signature does not verify with the log key"),
    "index_swapped": ("osiris.db", lambda c: c.executescript(
        "UPDATE evidence SET log_index = -1 WHERE log_index = 2;"
        "UPDATE evidence SET log_index = 2 WHERE log_index = 4;"
        "UPDATE evidence SET log_index = 4 WHERE log_index = -1;"),
        "points at leaf 2, which holds another entry"),
}  # fmt: skip


def test_log_verify_passes_an_untouched_log(tmp_path: Path, good_dir: tuple) -> None:
    data = tmp_path / "d"
    shutil.copytree(good_dir[0], data)
    r = run_cli("log", "verify", "--data", str(data))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("log OK: 12 leaves") and "12/12 receipts verified" in r.stdout
    assert "signature verified" in r.stdout


@pytest.mark.parametrize("edit", list(EDITS))
def test_log_verify_catches_each_edit(tmp_path: Path, good_dir: tuple, edit: str) -> None:
    data = tmp_path / "d"
    shutil.copytree(good_dir[0], data)
    db, change, says = EDITS[edit]
    conn = sqlite3.connect(data / db, isolation_level=None)
    change(conn)
    conn.close()
    r = run_cli("log", "verify", "--data", str(data), "--json")
    assert r.returncode == 1, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["ok"] is False and any(says in p for p in out["problems"]), out["problems"]
    r = run_cli("log", "verify", "--data", str(data))
    assert r.returncode == 1 and r.stdout.startswith("log FAILED") and says in r.stderr


def _archive(path: Path, build: Any) -> None:
    with tarfile.open(path, "w:gz") as tar:
        build(tar)


def _add(tar: tarfile.TarFile, name: str, data: bytes, **kw: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def _hostile(kind: str, m: dict[str, bytes], tmp: Path) -> Any:
    def build(tar: tarfile.TarFile) -> None:
        def good(skip: tuple[str, ...] = ()) -> None:
            for name, data in m.items():
                if name not in skip:
                    _add(tar, name, data)

        if kind == "absolute":
            good()
            _add(tar, "/tmp/osiris-evil", b"x")
        elif kind == "dotdot":
            good()
            _add(tar, "../evil", b"x")
        elif kind == "symlink":
            good(("log.db",))
            _add(tar, "log.db", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        elif kind == "hardlink":
            good(("log.db",))
            _add(tar, "log.db", b"", type=tarfile.LNKTYPE, linkname="osiris.db")
        elif kind == "directory":
            good(("log.db",))
            _add(tar, "log.db", b"", type=tarfile.DIRTYPE)
        elif kind == "unexpected":
            good()
            _add(tar, "keys/log.key", b"PRIVATE+KEY+...")
        elif kind == "duplicate":
            good()
            _add(tar, "server.toml", b'origin = "evil"\n')
        elif kind == "missing":
            good(("server.toml",))
        elif kind == "not_a_db":
            good(("osiris.db",))
            _add(tar, "osiris.db", b"not sqlite at all" * 100)
        elif kind == "bad_toml":
            good(("server.toml",))
            _add(tar, "server.toml", b"origin = [unterminated\n")
        elif kind == "truncated":
            good(("log.db",))
            info = tarfile.TarInfo("log.db")
            info.size = len(m["log.db"])
            tar.fileobj.write(info.tobuf())  # the header promises bytes that never come
            tar.fileobj.write(m["log.db"][:1000])
            tar.fileobj.write(b"\0" * 1024)
        elif kind == "forged_log":
            conn_path = tmp / "forged.db"
            conn_path.write_bytes(m["log.db"])
            conn = sqlite3.connect(conn_path)
            (entry,) = conn.execute("SELECT entry FROM leaves WHERE idx = 3").fetchone()
            conn.execute("UPDATE leaves SET entry = ? WHERE idx = 3", (_edit_leaf(bytes(entry)),))
            conn.commit()
            conn.close()
            good(("log.db",))
            _add(tar, "log.db", conn_path.read_bytes())

    return build


HOSTILE = [
    ("absolute", "not part of an osiris-server backup"),
    ("dotdot", "not part of an osiris-server backup"),
    ("symlink", "not a regular file"),
    ("hardlink", "not a regular file"),
    ("directory", "not a regular file"),
    ("unexpected", "not part of an osiris-server backup"),
    ("duplicate", "appears twice"),
    ("missing", "lacks server.toml"),
    ("not_a_db", "not a usable database"),
    ("bad_toml", "server.toml in the archive is unusable"),
    ("truncated", "is damaged"),
    ("forged_log", "fails its check"),
]


@pytest.mark.parametrize(("kind", "why"), HOSTILE, ids=[k for k, _ in HOSTILE])
def test_hostile_archive_changes_nothing(
    tmp_path: Path, good_backup: dict[str, bytes], kind: str, why: str
) -> None:
    bak = tmp_path / "evil.tar.gz"
    _archive(bak, _hostile(kind, good_backup, tmp_path))
    where = tmp_path / "restore-here"
    where.mkdir()
    before = sorted(os.listdir(where))
    r = run_cli("restore", "--from", str(bak), "--data", str(where / "new"))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert why in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("osiris-server: error: ")
    assert sorted(os.listdir(where)) == before  # no target, no leftover staging dir
    assert not Path("/tmp/osiris-evil").exists()


def test_restore_refuses_a_used_target_and_garbage(tmp_path: Path, good_backup: dict) -> None:
    bak = tmp_path / "good.tar.gz"
    _archive(bak, lambda tar: [_add(tar, n, d) for n, d in good_backup.items()])
    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("keep me")
    r = run_cli("restore", "--from", str(bak), "--data", str(used))
    assert r.returncode == 2 and "not empty" in r.stderr
    assert os.listdir(used) == ["something"]
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    r = run_cli("restore", "--from", str(junk), "--data", str(tmp_path / "x"))
    assert r.returncode == 2 and "not a .tar.gz backup" in r.stderr
    assert not (tmp_path / "x").exists()
    # a good archive into an existing EMPTY dir is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("restore", "--from", str(bak), "--data", str(empty))
    assert r.returncode == 0, r.stderr
    assert "log OK" in r.stdout


# ---------------------------------------------------------------------- PostgreSQL


def _pg_tool(tool: str, *args: str) -> None:
    from osiris_lab.pgcluster import find_bindir

    bindir = find_bindir()
    assert bindir is not None
    r = subprocess.run([str(bindir / tool), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_postgresql_pg_dump_restore_and_verify(tmp_path: Path, pg_cluster: Any) -> None:
    n = next(_DB_NAMES)
    src_url = pg_cluster.create_database(f"bk_src{n}")
    data = tmp_path / "orig"
    info = _init(data, src_url)
    # `backup` on a PostgreSQL data dir points at pg_dump instead of pretending
    r = run_cli("backup", "--data", str(data), "--out", str(tmp_path / "no.tar.gz"))
    assert r.returncode == 2 and "pg_dump" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "no.tar.gz").exists()
    srv = ServerProc(data)
    try:
        s = _client(srv, data, info)
        site = s.site()
        a = s.enroll(site["id"])
        before = _ingest(s, a, 5)
        stop, during = threading.Event(), []
        t = threading.Thread(target=_pump, args=(s, a, stop, during))
        t.start()
        try:
            dump = tmp_path / "osiris.dump"
            _pg_tool("pg_dump", "-Fc", "-f", str(dump), src_url)  # online: one snapshot
        finally:
            stop.set()
            t.join(30)
        dst_url = pg_cluster.create_database(f"bk_dst{n}")
        _pg_tool("pg_restore", "--no-owner", "-d", dst_url, str(dump))

        # the second host's data dir: server.toml and keys copied, the database restored
        new = tmp_path / "new"
        new.mkdir(mode=0o700)
        shutil.copy2(data / "server.toml", new / "server.toml")
        _copy_keys(data, new)
        r = run_cli("log", "verify", "--data", str(new), "--db", dst_url, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        out = json.loads(r.stdout)
        assert out["ok"] and out["signature"] == "verified" and out["evidence"] >= len(before)
        srv2 = ServerProc(new, "--db", dst_url, "--verify-log")
        try:
            size, root, n_rows = check_receipts(
                srv2.url, info["admin_token"], site["id"], a.id, info["log_vkey"]
            )
            assert n_rows == out["evidence"]
            orig = verified_checkpoint(
                _original_root(srv, info["admin_token"], size), info["log_vkey"]
            )
            assert orig.root == root
            got = {row["bundle_hash"] for row in _rows(srv2, info["admin_token"], site["id"])}
            assert set(before) <= got
        finally:
            srv2.stop()
    finally:
        srv.stop()

    import psycopg

    with psycopg.connect(dst_url, autocommit=True) as conn:
        (entry,) = conn.execute("SELECT entry FROM osiris_log.leaves WHERE idx = 3").fetchone()
        conn.execute(
            "UPDATE osiris_log.leaves SET entry = %s WHERE idx = 3", (_edit_leaf(bytes(entry)),)
        )
    _assert_tamper_caught(new, "--db", dst_url)
