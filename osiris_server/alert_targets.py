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

**Pinned, not re-resolved (DNS rebinding).** Checking a name and then letting the HTTP client
resolve it again leaves a window: a hostile DNS server answers a public address to the check and
``127.0.0.1`` to the connect. ``resolve`` therefore returns a ``Target`` holding the one checked
address, and the send (``alert_presets.post_pinned``) connects to exactly that address while the
name stays the ``Host`` header, the TLS SNI and the name the certificate must match. One parser
(httpx's) reads the URL for both the check and the send, so they cannot disagree on the host.
The resolver is a parameter (the system's ``getaddrinfo`` by default) so a test can play the
rebinding attacker without a DNS server of its own.

Errors never echo the URL (it may carry a token in its path or query).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class TargetRefused(ValueError):
    """A webhook URL the server will not call; the message is safe to show (no URL in it)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (the default; tests pass their own)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """A checked webhook: the URL as configured, and the one address the send connects to."""

    url: httpx.URL
    host: str  # ASCII (IDNA) name: Host header, SNI, certificate name; or an IP literal
    ip: IPAddress

    @property
    def host_is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def connect_url(self) -> httpx.URL:
        """The URL with the checked address in place of the name (path, query, port kept)."""
        return self.url.copy_with(host=str(self.ip))

    @property
    def host_header(self) -> str:
        """``name`` or ``name:port`` as the URL spelt it, what the receiver expects in Host."""
        return self.url.netloc.decode("ascii")


def _addresses(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        answers = resolver(host, port)
        return [ipaddress.ip_address(str(a).split("%")[0]) for a in answers]
    except (OSError, UnicodeError, ValueError):
        raise TargetRefused("the webhook host name does not resolve") from None


def resolve(url: str, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """Check ``url`` (every address its name resolves to, once) and return the ``Target`` to
    connect to, else raise ``TargetRefused``."""
    try:
        u = httpx.URL(url)
        host = u.raw_host.decode("ascii")
    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError):
        raise TargetRefused("the webhook URL is not a valid URL") from None
    if u.scheme not in ("https", "http") or not host:
        raise TargetRefused("a webhook URL is https://host/…")
    if u.userinfo:
        raise TargetRefused("a webhook URL carries no user:password@")
    addrs = _addresses(host, u.port or (443 if u.scheme == "https" else 80), resolver)
    if not addrs:
        raise TargetRefused("the webhook host name does not resolve")
    if u.scheme == "http" and not (allow_private and all(a.is_loopback for a in addrs)):
        raise TargetRefused("a webhook URL must be https (http only to loopback in a lab)")
    if not allow_private:
        for a in addrs:
            if not a.is_global or a.is_multicast:
                raise TargetRefused(
                    "the webhook URL points at a private, loopback or link-local address; "
                    "an admin can allow that with allow_private_webhooks in server.toml"
                )
    return Target(u, host, addrs[0])


def check_url(url: str, allow_private: bool, resolver: Resolver = system_resolver) -> str:
    """Return the URL if the server may POST to it, else raise ``TargetRefused`` (at save)."""
    resolve(url, allow_private, resolver)
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
