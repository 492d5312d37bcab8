"""The provisioning file: a claim code brought to an unenrolled appliance on a USB stick.

``osiris-provision.toml`` in one of ``[enrolment] provision_dirs`` (docs/enrolment.md)::

    server_url = "https://cc.example-msp.com"  # required; must equal server.url (trailing /
                                               # ignored)
    claim_code = "..."                         # required
    server_ca  = \"\"\"-----BEGIN CERTIFICATE-----...\"\"\"  # optional PEM; used only when
                                               # server.ca_file is unset

Why it is wiped whether or not it is valid: a claim code must not stay on a stick that leaves
the clinic in someone's pocket. The file is read once, overwritten with zeros, fsynced and
unlinked before its content is even parsed. A symlink is never followed (wiping through it
would zero the file it points at, e.g. the appliance's token): it is unlinked and refused.
A file that cannot be wiped (read-only stick) is refused too, and remembered so it is not
re-read every poll. Error messages never carry the claim code.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "osiris-provision.toml"
MAX_BYTES = 64 * 1024
KEYS = ("server_url", "claim_code", "server_ca")


class ProvisionFileError(Exception):
    """The file was refused (it has been wiped); the message is safe to log."""


@dataclass(frozen=True)
class Provision:
    path: str
    claim_code: str
    server_ca: str | None


def _wipe_fd(fd: int, size: int) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    left = size
    zeros = b"\0" * 4096
    while left > 0:
        left -= os.write(fd, zeros[: min(left, len(zeros))])
    os.fsync(fd)


def take(path: Path) -> bytes:
    """Read ``path`` once and wipe it (zeros, fsync, unlink); raise if it cannot be wiped."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        if path.is_symlink():
            try:
                path.unlink()
            except OSError:
                pass
            raise ProvisionFileError(f"{path}: a symlink; removed, not followed") from None
        raise ProvisionFileError(f"{path}: cannot be opened for wiping ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProvisionFileError(f"{path}: not a regular file")
        data = os.read(fd, MAX_BYTES + 1)
        _wipe_fd(fd, max(st.st_size, len(data)))
    except OSError as e:
        raise ProvisionFileError(f"{path}: cannot be wiped ({e.strerror}); refused") from None
    finally:
        os.close(fd)
    try:
        path.unlink()
    except OSError as e:
        raise ProvisionFileError(f"{path}: wiped but not removed ({e.strerror})") from None
    if len(data) > MAX_BYTES:
        raise ProvisionFileError(f"{path}: larger than {MAX_BYTES} bytes")
    return data


def parse(path: Path, data: bytes, server_url: str) -> Provision:
    """Check the file's content against this appliance's configured server."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProvisionFileError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ProvisionFileError(f"{path}: bad TOML ({e})") from None
    unknown = sorted(k for k in doc if k not in KEYS)
    if unknown:
        raise ProvisionFileError(f"{path}: unknown key(s) {', '.join(unknown)}")
    url = doc.get("server_url")
    if not isinstance(url, str) or not url:
        raise ProvisionFileError(f"{path}: server_url missing")
    if url.rstrip("/") != server_url.rstrip("/"):
        raise ProvisionFileError(
            f"{path}: server_url {url!r} is not this appliance's server {server_url!r}; refused"
        )
    code = doc.get("claim_code")
    if not isinstance(code, str) or not code.strip():
        raise ProvisionFileError(f"{path}: claim_code missing")
    ca = doc.get("server_ca")
    if ca is not None and (not isinstance(ca, str) or "-----BEGIN CERTIFICATE-----" not in ca):
        raise ProvisionFileError(f"{path}: server_ca is not a PEM certificate")
    return Provision(str(path), code.strip(), ca)


def find(dirs: tuple[str, ...]) -> Path | None:
    for d in dirs:
        p = Path(d) / FILE_NAME
        if p.exists() or p.is_symlink():
            return p
    return None
