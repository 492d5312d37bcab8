"""Outbound alerts for critical incidents: e-mail (SMTP) and signed webhooks.

A critical incident (a failed heal, ``log_inconsistent``, an appliance gone silent) must reach a
human even when nobody watches the console, so the server pushes it out. Two channels:

* **E-mail** through the MSP's relay with ``smtplib`` (STARTTLS by default, optional login).
  ``cafile`` lets a private relay with its own CA (or a self-signed cert) be trusted explicitly
  instead of turning verification off.
* **Webhooks** (PSA/RMM/chat): the body is canonical JSON, signed GitHub/Stripe-style with
  HMAC-SHA256 over ``"<timestamp>." + body``. The timestamp is inside the MAC, so a receiver that
  checks it against its clock (``verify_webhook``, 5-minute tolerance) rejects replays of an old
  alert; the comparison is constant-time.

Every failure is one ``AlertError`` whose message names the channel and the cause but never a
password or secret — alerts are logged and shown to operators. These calls block; the caller
runs them off the request thread (lesson D: no blocking ``smtplib`` inside a request handler).
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

import httpx

from osiris_core import canonical
from osiris_core.errors import OsirisError

SIGNATURE_HEADER = "X-Osiris-Signature"
TIMESTAMP_HEADER = "X-Osiris-Timestamp"
REDACTED = "[REDACTED]"


class AlertError(OsirisError):
    """An alert that could not be delivered (network error, refusal, bad configuration)."""

    code = "E_ALERT"


@dataclass
class SmtpConfig:
    """Where and how to send alert e-mail. ``repr`` hides the password."""

    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "osiris@localhost"
    recipients: list[str] = field(default_factory=list)
    timeout: float = 10.0
    cafile: str | None = None  # trust this CA/cert for STARTTLS instead of the system store


def _scrub(text: str, secret: str | None) -> str:
    """Remove ``secret`` from ``text`` — a last line of defence for messages and bodies."""
    if secret:
        return text.replace(secret, REDACTED)
    return text


def send_email(
    cfg: SmtpConfig, subject: str, body: str, to: list[str] | None = None, from_name: str = ""
) -> None:
    """Send one plain-text alert to ``cfg.recipients`` (or ``to``: the portal's sign-in links,
    one contact each); raises ``AlertError`` on any failure.

    The password is used only for ``AUTH`` and only after STARTTLS when ``starttls`` is on; if
    it somehow appears in the subject or body it is replaced by ``[REDACTED]``.
    """
    recipients = list(to) if to is not None else cfg.recipients
    if not recipients:
        raise AlertError("e-mail alert has no recipients")
    msg = EmailMessage()
    msg["From"] = formataddr((from_name, cfg.sender)) if from_name else cfg.sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = _scrub(subject, cfg.password).replace("\n", " ").replace("\r", " ")
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="osiris.local")
    msg.set_content(_scrub(body, cfg.password))
    try:
        with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout) as smtp:
            smtp.ehlo()
            if cfg.starttls:
                ctx = ssl.create_default_context(cafile=cfg.cafile)
                smtp.starttls(context=ctx)
                smtp.ehlo()
            if cfg.username is not None:
                smtp.login(cfg.username, cfg.password or "")
            refused = smtp.send_message(msg, from_addr=cfg.sender, to_addrs=recipients)
    except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as exc:
        detail = _scrub(f"{type(exc).__name__}: {exc}", cfg.password)
        raise AlertError(f"e-mail alert via {cfg.host}:{cfg.port} failed: {detail}") from None
    if refused:
        raise AlertError(f"e-mail alert refused for {len(refused)} recipient(s)")


def sign_webhook(secret: bytes, timestamp: int, body: bytes) -> str:
    """``"sha256=<hex>"`` = HMAC-SHA256(secret, f"{timestamp}." + body)."""
    mac = hmac.new(secret, f"{int(timestamp)}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(
    secret: bytes,
    timestamp: str,
    signature: str,
    body: bytes,
    now: int,
    tolerance_s: int = 300,
) -> bool:
    """True when ``signature`` is ours for this body and ``timestamp`` is within tolerance.

    Never raises: a malformed timestamp or signature is simply not valid.
    """
    if not isinstance(timestamp, str) or not timestamp.isascii() or not timestamp.isdigit():
        return False
    if len(timestamp) > 19:
        return False
    ts = int(timestamp)
    if abs(int(now) - ts) > tolerance_s:
        return False
    if not isinstance(signature, str):
        return False
    expected = sign_webhook(secret, ts, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))


def send_webhook(url: str, secret: bytes, payload: dict[str, Any], timeout: float = 5.0) -> int:
    """POST ``payload`` as canonical JSON with timestamp + signature headers; return the status.

    Raises ``AlertError`` on a network error or a non-2xx answer. Redirects are not followed:
    a signed alert goes where it was configured to go, nowhere else.
    """
    try:
        body = canonical.dumps(payload)
    except OsirisError as exc:
        raise AlertError(f"webhook payload is not canonical JSON: {exc}") from None
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign_webhook(secret, ts, body),
        "User-Agent": "osiris-server",
    }
    try:
        resp = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise AlertError(f"webhook to {_safe_url(url)} failed: {type(exc).__name__}") from None
    if not 200 <= resp.status_code < 300:
        raise AlertError(f"webhook to {_safe_url(url)} answered HTTP {resp.status_code}")
    return resp.status_code


def _safe_url(url: str) -> str:
    """The URL without userinfo or query (either may carry a token)."""
    try:
        u = httpx.URL(url)
        return str(u.copy_with(username=None, password=None, query=None, fragment=None))
    except (httpx.InvalidURL, ValueError, TypeError):  # reported without echoing it
        return "<invalid url>"
