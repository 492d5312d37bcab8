"""Writing and reading files that hold secrets (keys, tokens, pins, the trust store), one way.

Every secret file Osiris writes goes through :func:`write_private` (or :func:`private_stream`
for a writer that streams, or :func:`create_private` for "create, never replace") so that the
hardening is the same everywhere instead of five copies that each forgot something:

* **Never briefly readable by others**: the temp file is created mode 0600 and ``fchmod``-ed,
  so neither a loose umask (even ``000``) nor a pre-existing file can widen it.
* **Never through a planted link**: the temp file is opened ``O_CREAT|O_EXCL|O_NOFOLLOW`` under
  a random name in the target's directory; a symlink (or anything) already at that name makes
  the open fail instead of writing through it.
* **A symlink at the target is replaced, not followed**: ``os.replace`` renames over the link
  itself, so a link pointing at ``/etc/shadow`` is swapped for our file and its target is never
  touched.
* **Crash-safe**: write, ``fsync`` the file, ``os.replace`` over the target, ``fsync`` the
  directory; a crash or a failed write leaves the old file intact and the temp file removed.

:func:`read_private_file` is the matching reader: it refuses a secret file that group or other
users could read or change, checked on the file descriptor actually read.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from osiris_core.errors import KeyFormatError, KeyPermissionError

PRIVATE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _temp_name(p: Path) -> Path:
    return p.with_name(f".{p.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def _open_temp(p: Path, mode: int) -> tuple[int, Path]:
    tmp = _temp_name(p)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode & 0o600)
    try:
        os.fchmod(fd, mode)  # the umask can only remove bits; this makes the mode exact
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return fd, tmp


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in ``path`` durable; a filesystem that cannot fsync a directory is not an
    error (the rename itself already happened atomically)."""
    try:
        dfd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _commit(tmp: Path, p: Path) -> None:
    os.replace(tmp, p)
    fsync_dir(p.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` atomically, the file having exactly ``mode``.

    Use :func:`write_private` for secrets; this form exists for the few public files (an
    attestation, mode 0644) that want the same crash safety and link hardening.
    """
    p = Path(path)
    fd, tmp = _open_temp(p, mode)
    try:
        try:
            _write_all(fd, bytes(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        _commit(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600 whatever the umask."""
    write_atomic(path, data, mode=PRIVATE_MODE)


@contextlib.contextmanager
def private_stream(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """``with private_stream(p) as f: f.write(...)``: for writers that stream (a tar archive).

    Same guarantees as :func:`write_private`; if the block raises, ``path`` is left as it was
    and the temp file is removed.
    """
    p = Path(path)
    fd, tmp = _open_temp(p, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _commit(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_private(path: str | os.PathLike[str], data: bytes = b"") -> None:
    """Create ``path`` (mode 0600 from its first byte) holding ``data``; never replaces or
    follows anything already there (``FileExistsError``). An empty file is a valid new SQLite
    database, which is why a server creates its databases this way before SQLite touches them."""
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
        _write_all(fd, bytes(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_private_file(path: str | os.PathLike[str], what: str, max_bytes: int = 4096) -> bytes:
    """The bytes of a secret file, refusing one that group or other users could read, write or
    run, or that is not a regular file (checked on the file actually read, not the path)."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError as e:
        raise KeyFormatError(f"cannot read {what} {p}: {e.strerror}") from None
    try:
        st = os.fstat(fd)  # check the file we actually read, not whatever the path names later
        if not stat.S_ISREG(st.st_mode):
            raise KeyFormatError(f"{what} {p} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyPermissionError(
                f"{what} {p} has mode {stat.S_IMODE(st.st_mode):04o}: other users could "
                f"read or change it; fix with: chmod 600 {p}"
            )
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            if sum(map(len, chunks)) > max_bytes:
                raise KeyFormatError(f"{what} {p} is too large")
    finally:
        os.close(fd)
    return b"".join(chunks)


__all__ = [
    "PRIVATE_MODE",
    "create_private",
    "fsync_dir",
    "private_stream",
    "read_private_file",
    "write_atomic",
    "write_private",
]
