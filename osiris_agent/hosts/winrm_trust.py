"""Per-host trust for a WinRM HTTPS listener: a CA bundle, a pinned leaf, or trust on first use.

A clinic's listener usually has a self-signed or AD CS certificate the appliance's system store
does not know, so each WinRM target says how its certificate is trusted, like an SSH host key:

* ``cert_thumbprint`` — SHA-256 (hex) of the listener's leaf certificate (DER). Checked by
  urllib3's ``assert_fingerprint`` **on the very connection that will carry the credentials**,
  right after the TLS handshake and before the first HTTP byte — so before NTLM, Kerberos or
  Basic sends anything. Chain and host name are not judged: the pin is the trust.
* ``ca_bundle`` — PEM CA certificates (the clinic's AD CS root, or the self-signed listener
  certificate itself): the chain must end in one of them and the host name must match. Only
  these — never the system store as well, and never ``REQUESTS_CA_BUNDLE`` from the
  environment.
* ``ca_file`` — the same from a file on the appliance (agent configuration).
* neither — trust on first use: one probe handshake reads the leaf, the agent records its
  thumbprint as evidence (``on_tofu``) and pins it in memory; the real connection is then held
  to that pin, so a certificate that changes later (or between the probe and the connection) is
  refused (``E_HOST_KEY``), never accepted silently. An operator confirms it by pasting the
  thumbprint into the credential.

Why an adapter and not pywinrm's options: pywinrm takes a CA *path* and a validate/ignore
switch; neither pins a leaf nor keeps the system store out, and requests merges the session's
``verify`` into every request. :class:`TrustAdapter` owns the pool's TLS settings and ignores the
session's, so no later ``verify`` can loosen them.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from osiris_agent.hosts.base import AuthError, HostKeyError, TransportError
from osiris_core import ids


def normalise_thumbprint(text: str) -> str:
    """``ab:CD …`` → ``abcd…``; a value that is not 64 hex digits is refused."""
    t = re.sub(r"[\s:]", "", text).lower()
    if not ids.HEX64.match(t):
        raise HostKeyError(f"certificate pin {text[:80]!r} is not a SHA-256 thumbprint (64 hex)")
    return t


def thumbprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class Trust:
    """How one listener's certificate is judged (see the module docstring)."""

    context: ssl.SSLContext
    pin: str | None  # SHA-256 hex of the leaf, or None (chain + host name)
    tofu: bool = False  # the pin was taken on first use


def _pin_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin, checked on the connection, is the trust
    return ctx


def probe_leaf(address: str, port: int, timeout: float = 10.0) -> bytes:
    """The listener's leaf certificate (DER) from one handshake; nothing is sent over it."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw:
            with _pin_context().wrap_socket(raw, server_hostname=address) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(f"TLS handshake with {address}:{port} failed ({exc})") from None
    if not der:
        raise TransportError(f"{address}:{port} presented no certificate")
    return der


def trust_for(
    *,
    address: str,
    port: int,
    host_id: str,
    cert_thumbprint: str | None,
    ca_bundle: str | None,
    ca_file: str | None,
    on_tofu: Any = None,
) -> Trust:
    """The trust for one target; TOFU probes the listener now."""
    if cert_thumbprint:
        return Trust(_pin_context(), normalise_thumbprint(cert_thumbprint))
    if ca_bundle or ca_file:
        try:
            ctx = ssl.create_default_context(cafile=ca_file or None, cadata=ca_bundle or None)
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise TransportError(f"the CA bundle for {host_id} cannot be loaded ({exc})") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return Trust(ctx, None)
    pin = thumbprint(probe_leaf(address, port))
    if on_tofu is not None:
        on_tofu(host_id, pin)
    return Trust(_pin_context(), pin, tofu=True)


def mount(session: Any, trust: Trust) -> None:
    """Route every https request of ``session`` through ``trust`` (idempotent)."""
    if getattr(session, "_osiris_trust", None) is trust:
        return
    session.mount("https://", TrustAdapter(trust))
    session.verify = trust.pin is None  # informational: the adapter ignores it
    session._osiris_trust = trust


def bind(proto: Any, trust: Trust) -> None:
    """Every session pywinrm builds for ``proto`` (a ``winrm.protocol.Protocol``) goes through
    the trust adapter, the first one now."""
    transport = proto.transport
    build = transport.build_session

    def build_trusted() -> Any:
        session = build()
        mount(session, trust)
        return session

    transport.build_session = build_trusted
    build_trusted()


def require_kerberos(host_id: str) -> None:
    """Kerberos needs pywinrm's kerberos extra (pykerberos) and a ticket; say so plainly."""
    import winrm.transport

    if not winrm.transport.HAVE_KERBEROS:
        raise AuthError(
            f"WinRM auth kerberos for {host_id} needs the Kerberos client library on the "
            "appliance (pywinrm[kerberos]: pykerberos) and a ticket for the credential's user "
            "(kinit); use auth ntlm until the appliance is domain joined"
        )


def _adapter_base() -> Any:
    from requests.adapters import HTTPAdapter

    return HTTPAdapter


class TrustAdapter(_adapter_base()):  # type: ignore[misc]
    """A requests adapter whose pools use one SSL context and, if pinned, one leaf thumbprint."""

    def __init__(self, trust: Trust) -> None:
        self._trust = trust
        self._reqs = "CERT_NONE" if trust.pin else "CERT_REQUIRED"
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kw: Any):
        kw["ssl_context"] = self._trust.context
        kw["cert_reqs"] = self._reqs
        if self._trust.pin:
            kw["assert_fingerprint"] = self._trust.pin
        super().init_poolmanager(connections, maxsize, block, **kw)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None):
        host, _ignored = super().build_connection_pool_key_attributes(request, verify, cert)
        return host, {"cert_reqs": self._reqs}  # never the session's verify or CA path

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        return  # the pool's settings stand (older requests call this per connection)
