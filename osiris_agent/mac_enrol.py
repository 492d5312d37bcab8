"""MAC-approval enrolment: the box polls ``GET /provision/{mac}`` with a requester secret until
an operator approves the fingerprint its console shows, then claims with the returned code.

Why a secret and a fingerprint: knowing a MAC must grant nothing (DESIGN §6). The box chooses a
random secret once (``<state_dir>/enroll-secret``, 0600 — refused if anyone else could read it,
since whoever holds it receives the claim code) and sends it on every poll; the server stores
only its hash and the operator approves that hash's full fingerprint, read off this box's
console. The fingerprint is computed here too and must equal the server's: a server answering
for another requester is not followed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import stat
from pathlib import Path

from osiris_core.files import write_private

from .client import ServerClient
from .enroll import EnrollError, mac_address

log = logging.getLogger("osiris_agent.firstboot")
SECRET_NAME = "enroll-secret"
SECRET_HEADER = "X-Osiris-Enroll-Secret"
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{32,128}")


def load_or_create_secret(state_dir: str | os.PathLike[str]) -> str:
    """The requester secret: generated once (32 random bytes, URL-safe), then reused."""
    p = Path(state_dir) / SECRET_NAME
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        secret = secrets.token_urlsafe(32)
        write_private(p, (secret + "\n").encode("ascii"))
        return secret
    if not stat.S_ISREG(st.st_mode):
        raise EnrollError(f"{p} is not a regular file")
    if st.st_mode & 0o077:
        raise EnrollError(f"{p} is readable by others (mode {st.st_mode & 0o777:o}); must be 0600")
    if st.st_uid != os.geteuid():
        raise EnrollError(f"{p} is not owned by this user")
    secret = p.read_text(encoding="ascii", errors="replace").strip()
    if not _SECRET_RE.fullmatch(secret):
        raise EnrollError(f"{p} does not hold a requester secret")
    return secret


def fingerprint(secret: str) -> str:
    """The server's ``fingerprint(requester_hash(secret))``: 16 dash-separated groups of 4 hex."""
    h = hashlib.sha256(b"osiris-enroll\n" + secret.encode("ascii")).hexdigest()
    return "-".join(h[i : i + 4] for i in range(0, 64, 4))


def poll(server_url: str, ca_file: str | None, secret: str, mac: str | None = None) -> str | None:
    """One poll: the claim code once this requester is approved, else None.
    Raises the client's errors (unreachable, refused)."""
    mac = mac or mac_address()
    client = ServerClient(server_url, None, ca_file)
    try:
        answer = client.get(f"/provision/{mac}", {SECRET_HEADER: secret})
    finally:
        client.close()
    mine = fingerprint(secret)
    if not isinstance(answer, dict) or answer.get("fingerprint") != mine:
        log.error("MAC enrolment: the server answered for another requester; ignored")
        return None
    code = answer.get("claim_code")
    if answer.get("status") == "approved" and isinstance(code, str) and code:
        log.warning("MAC enrolment approved for requester %s", mine)
        return code
    return None
