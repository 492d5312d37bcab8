"""The one atomic private-file writer (osiris_core.files) and the rule that it is the only one."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from osiris_core import files
from osiris_core.errors import KeyPermissionError
from osiris_core.files import (
    create_private,
    private_stream,
    read_private_file,
    write_atomic,
    write_private,
)

ROOT = Path(__file__).resolve().parents[2]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_mode_is_0600_even_with_umask_000(tmp_path, open_umask) -> None:
    p = tmp_path / "secret"
    write_private(p, b"s3cret\n")
    assert _mode(p) == 0o600
    assert p.read_bytes() == b"s3cret\n"


def test_replacing_a_loose_file_tightens_it(tmp_path, open_umask) -> None:
    p = tmp_path / "secret"
    p.write_bytes(b"old")
    p.chmod(0o666)
    write_private(p, b"new")
    assert _mode(p) == 0o600 and p.read_bytes() == b"new"


def test_write_atomic_sets_the_exact_mode_asked_for(tmp_path, open_umask) -> None:
    p = tmp_path / "public.json"
    write_atomic(p, b"{}", mode=0o644)
    assert _mode(p) == 0o644


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    link = tmp_path / "secret"
    link.symlink_to(victim)
    write_private(link, b"ours")
    assert not link.is_symlink() and link.read_bytes() == b"ours"
    assert victim.read_bytes() == b"untouched"


def test_a_symlink_planted_at_the_temp_name_is_refused(tmp_path, monkeypatch) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    planted = tmp_path / ".secret.planted.tmp"
    planted.symlink_to(victim)
    monkeypatch.setattr(files, "_temp_name", lambda p: planted)
    with pytest.raises(FileExistsError):
        write_private(tmp_path / "secret", b"ours")
    assert victim.read_bytes() == b"untouched"
    assert not (tmp_path / "secret").exists()


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch) -> None:
    p = tmp_path / "secret"
    write_private(p, b"old")

    def full_disk(fd: int, data: bytes) -> int:  # the OS boundary: ENOSPC mid-write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_private(p, b"new" * 1000)
    monkeypatch.undo()
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["secret"]


def test_a_short_write_is_completed(tmp_path, monkeypatch) -> None:
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:3])))
    write_private(tmp_path / "secret", b"0123456789")
    monkeypatch.undo()
    assert (tmp_path / "secret").read_bytes() == b"0123456789"


def test_a_stream_that_raises_keeps_the_old_file(tmp_path, open_umask) -> None:
    p = tmp_path / "backup.tar.gz"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError), private_stream(p) as f:
        f.write(b"half an archive")
        raise RuntimeError("interrupted")
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["backup.tar.gz"]
    with private_stream(p) as f:
        f.write(b"whole")
    assert p.read_bytes() == b"whole" and _mode(p) == 0o600


def test_create_private_never_replaces(tmp_path, open_umask) -> None:
    p = tmp_path / "osiris.db"
    create_private(p)
    assert _mode(p) == 0o600 and p.read_bytes() == b""
    with pytest.raises(FileExistsError):
        create_private(p, b"again")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        create_private(link, b"x")
    assert not (tmp_path / "nowhere").exists()


def test_the_reader_refuses_a_loose_file(tmp_path) -> None:
    p = tmp_path / "secret"
    write_private(p, b"k")
    assert read_private_file(p, "secret") == b"k"
    p.chmod(0o640)
    with pytest.raises(KeyPermissionError, match="chmod 600"):
        read_private_file(p, "secret")


# ---------------------------------------------------------------- one writer, not five

# Production modules that call os.replace for something that is not writing a secret file.
NOT_A_SECRET_WRITE = {
    # the rotation commit renames the already-written 0600 ``.new`` key over the key file
    "osiris_agent/keyring.py": "renames an existing key file, writes nothing",
    # the export is a directory tree of public evidence, renamed into place as a whole
    "osiris_core/export.py": "renames a directory of public evidence",
    # the evidence packet zip is written by zipfile into a mkstemp file (0600) then renamed;
    # owned by the packet restructuring, a candidate for files.private_stream
    "osiris_core/packet.py": "an evidence packet for auditors, not a secret",
    # the one-store migration renames the merged scan.db/heal.db aside after its commit
    "osiris_agent/migrations.py": "renames a merged old database aside, writes nothing",
    # restore unpacks into a 0700 mkdtemp staging dir (members created 0600) beside the
    # target and renames the whole checked directory into place
    "osiris_server/backup.py": "renames a private, already-written staging directory",
    # the lab's Debian root filesystem is built in a temp dir and renamed into its cache
    "osiris_lab/debian_host.py": "renames a built lab root filesystem into its cache",
}

PACKAGES = ("osiris_core", "osiris_agent", "osiris_server", "osiris_tui", "osiris_lab")


def _calls_os_replace(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if f.attr in ("replace", "rename") and isinstance(f.value, ast.Name):
                if f.value.id == "os":
                    return True
    return False


def test_no_other_module_renames_files_into_place() -> None:
    offenders = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "osiris_core/files.py" or rel in NOT_A_SECRET_WRITE:
                continue
            if _calls_os_replace(ast.parse(path.read_text("utf-8"))):
                offenders.append(rel)
    assert offenders == [], (
        f"{offenders} call os.replace/os.rename: write secret files with "
        "osiris_core.files.write_private (or add a reason to NOT_A_SECRET_WRITE)"
    )


def test_the_allow_list_is_not_stale() -> None:
    for rel in NOT_A_SECRET_WRITE:
        assert _calls_os_replace(ast.parse((ROOT / rel).read_text("utf-8"))), rel


def test_the_scan_sees_an_os_replace() -> None:
    assert _calls_os_replace(ast.parse("import os\nos.replace('a', 'b')\n"))
    assert not _calls_os_replace(ast.parse("'a'.replace('a', 'b')\n"))
