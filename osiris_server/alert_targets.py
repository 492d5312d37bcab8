"""Where an alert webhook may point: https to a public address, nothing the server can reach
that an outsider cannot (SSRF).

A route's URL is typed in by an operator or a partner, and the server POSTs to it from inside
the MSP's network; pointed at ``169.254.169.254``, ``10.0.0.1`` or ``localhost`` it would make
the server a probe of that network. So, unless the server's admin set
``allow_private_webhooks = true`` in ``server.toml`` (a lab, or a PSA on the LAN on purpose):

* the scheme is ``https`` (plain ``http`` only to a loopback address, and only with the setting);
* no userinfo (``user:pass@``: a secret in the wrong place, and a classic parser confusion);
* every address the host name resolves to is global (not private, loopback, link-local,
  multicast, reserved, or the unspecified address). The check runs when the route is saved
  and again before every send, so a name that later resolves inward is refused then.

Errors never echo the URL (it may carry a token in its path or query).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """A webhook URL the server will not call; the message is safe to show (no URL in it)."""


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused("the webhook host name does not resolve") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_url(url: str, allow_private: bool) -> str:
    """Return the URL if the server may POST to it, else raise ``TargetRefused``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("the webhook URL is not a valid URL") from None
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise TargetRefused("a webhook URL is https://host/…")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("a webhook URL carries no user:password@")
    addrs = _addresses(host, port or (443 if parts.scheme == "https" else 80))
    if not addrs:
        raise TargetRefused("the webhook host name does not resolve")
    if parts.scheme == "http" and not (allow_private and all(a.is_loopback for a in addrs)):
        raise TargetRefused("a webhook URL must be https (http only to loopback in a lab)")
    if not allow_private:
        for a in addrs:
            if not a.is_global or a.is_multicast:
                raise TargetRefused(
                    "the webhook URL points at a private, loopback or link-local address; "
                    "an admin can allow that with allow_private_webhooks in server.toml"
                )
    return url


def display(url: str) -> str:
    """What an operator sees of a sealed URL: scheme and host only (a token may be anywhere
    after it)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}/…"
