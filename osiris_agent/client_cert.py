"""The appliance's mTLS client certificate: its key, the CSR sent at the claim, renewal.

Why the agent makes the key itself: the private key never leaves the box; the server only ever
sees a CSR and hands back a certificate naming the appliance id it chose
(``urn:osiris:appliance:<id>``, osiris_server/client_ca.py). The key is written (0600) *before*
the claim, like the other seeds, so an interrupted enrolment re-run sends the same key.

Which files are used (:func:`paths`): ``server.client_cert``/``server.client_key`` from the
config when set (a certificate the MSP provisioned), else ``<state_dir>/client.pem`` and
``client.key`` when enrolment wrote them, else none (a server without mTLS).

Renewal (:func:`renew_if_due`): a certificate the enrolment wrote is renewed over the current,
still valid mTLS connection once fewer than ``RENEW_DAYS`` remain (same key, new certificate).
``cryptography`` is imported only here and only when a key, a CSR or an expiry is needed, so an
agent without mTLS never pays for it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris_core.errors import KeyFormatError, OsirisError
from osiris_core.files import read_private_file, write_private

from .client import ServerRefused

if TYPE_CHECKING:
    from .client import ServerClient
    from .config import AgentConfig
    from .context import AgentContext, CycleReport

KEY_NAME = "client.key"
CERT_NAME = "client.pem"
RENEW_DAYS = 30


def _load_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    raw = read_private_file(path, "client certificate key", max_bytes=16384)
    try:
        return serialization.load_pem_private_key(raw, password=None)
    except ValueError:
        raise KeyFormatError(f"{path} is not a PEM private key") from None


def csr_for(state_dir: str | os.PathLike[str]) -> str:
    """The CSR (PEM) for this box's client key, made (EC P-256, 0600) on first use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    path = Path(state_dir) / KEY_NAME
    if path.exists():
        key = _load_key(path)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(path, pem)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "osiris-appliance")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def store(state_dir: str | os.PathLike[str], pem: str) -> Path:
    """Write the certificate the server issued, after checking it is for our key."""
    from cryptography import x509

    sd = Path(state_dir)
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise KeyFormatError("the server's client certificate is not PEM") from None
    key = _load_key(sd / KEY_NAME)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise KeyFormatError("the server's client certificate is not for this box's key")
    path = sd / CERT_NAME
    write_private(path, pem.encode("ascii"))
    return path


def paths(cfg: AgentConfig) -> tuple[str, str] | None:
    """(certificate, key) to present, or None (see the module docstring)."""
    sd = Path(cfg.agent.state_dir)
    if cfg.server.client_cert:
        return cfg.server.client_cert, cfg.server.client_key or str(sd / KEY_NAME)
    if (sd / CERT_NAME).exists():
        return str(sd / CERT_NAME), cfg.server.client_key or str(sd / KEY_NAME)
    return None


def days_left(cert_path: str | os.PathLike[str], now: dt.datetime | None = None) -> float:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    left = cert.not_valid_after_utc - (now or dt.datetime.now(dt.UTC))
    return left.total_seconds() / 86400


def renew_if_due(cfg: AgentConfig, client: ServerClient, now: dt.datetime | None = None) -> bool:
    """Renew the enrolment-written certificate when it is due; True when a new one was stored.
    A certificate from the config is the MSP's to renew and is left alone."""
    if cfg.server.client_cert:
        return False
    sd = Path(cfg.agent.state_dir)
    cert = sd / CERT_NAME
    if not cert.exists() or days_left(cert, now) > RENEW_DAYS:
        return False
    answer = client.post("/client-cert", {"csr": csr_for(sd)})
    pem = answer.get("client_cert") if isinstance(answer, dict) else None
    if not isinstance(pem, str):
        raise KeyFormatError("the server's renewal answer has no client certificate")
    store(sd, pem)
    return True


class Renewal:
    """The run loop's step: at most once a day (hourly after a failure) while reachable."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.next_at = 0.0

    def due(self, report: CycleReport) -> None:
        now = time.monotonic()
        if not report.reachable or now < self.next_at:
            return
        self.next_at = now + 86400
        ctx = self.ctx
        try:
            if renew_if_due(ctx.cfg, ctx.client):
                ctx.client.use_client_cert(paths(ctx.cfg))
        except ServerRefused as e:  # no CA, or no mTLS: nothing to renew over; ask tomorrow
            report.errors.append(f"client certificate renewal refused: {e}")
        except (OsirisError, OSError) as e:  # the old certificate stays in use until it expires
            self.next_at = now + 3600
            report.errors.append(f"client certificate renewal failed: {e}")
