"""The client CA: certificates that bind an appliance's TLS connection to its appliance id (mTLS).

Why a certificate on top of the bearer token: with ``serve --client-ca`` a stolen token alone is
not enough to act as an appliance; the thief also needs the private key that never leaves the
box. The binding is the certificate's URI SAN ``urn:osiris:appliance:<appliance id>``: a valid
certificate of appliance A presented with appliance B's token is refused (403 E_CLIENT_CERT).

Where it lives: ``DATA/keys/client-ca.pem`` and ``client-ca.key`` (0600, refused when looser),
made by ``osiris-server client-ca init``. When the key is there the claim issues a certificate
from the CSR the agent sends (:meth:`ClientCA.issue`); the requested subject and extensions are
ignored, only the public key is taken, so a box cannot ask for another appliance's name. When
only an MSP's own CA is used (``--client-ca`` pointing elsewhere and no key here), the claim
issues nothing and the MSP provisions certificates carrying that URI SAN itself.

EC P-256 or Ed25519 keys only: what OpenSSL's TLS 1.2+ client auth and the agent both handle,
and no RSA size policy to get wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from osiris_core.errors import KeyFormatError, OsirisError
from osiris_core.files import create_private, read_private_file, write_atomic
from osiris_server.http import HttpError

CERT_FILE = "client-ca.pem"
KEY_FILE = "client-ca.key"
URN_PREFIX = "urn:osiris:appliance:"
CERT_DAYS = 397  # the CA/Browser Forum's ceiling; the agent renews well before it
CA_YEARS = 10
MAX_CSR_CHARS = 4096


class CsrError(OsirisError):
    """The CSR is unusable (not PEM, bad self-signature, wrong key type): a 400, nothing spent."""

    code = "E_CSR"


def appliance_urn(appliance_id: str) -> str:
    return URN_PREFIX + appliance_id


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def paths(keys_dir: Path) -> tuple[Path, Path]:
    return keys_dir / CERT_FILE, keys_dir / KEY_FILE


def init(keys_dir: Path, origin: str) -> Path:
    """Create the client CA (EC P-256, 10 years) in ``keys_dir``; refuses to replace one (every
    appliance certificate chains to it). Returns the certificate's path for ``--client-ca``."""
    cert_path, key_path = paths(keys_dir)
    if cert_path.exists() or key_path.exists():
        raise OsirisError(f"a client CA already exists in {keys_dir}; it is never replaced")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"Osiris client CA ({origin.split('/', 1)[0]})"[:64])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    create_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert_path


@dataclass(frozen=True)
class ClientCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def issue(self, csr_pem: str, appliance_id: str) -> tuple[str, str]:
        """A client certificate for ``appliance_id`` with the CSR's public key: (PEM, SHA-256
        of its DER). Raises :class:`CsrError` before anything is spent."""
        public = csr_public_key(csr_pem)
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(appliance_id))
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=CERT_DAYS), self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(appliance_urn(appliance_id))]
                ),
                critical=True,  # the subject is informational; the SAN is the binding
            )  # fmt: skip
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        return cert.public_bytes(serialization.Encoding.PEM).decode(), hashlib.sha256(
            der
        ).hexdigest()


def csr_public_key(csr_pem: str) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    """The public key of a well-formed, self-signed CSR (EC P-256 or Ed25519), else CsrError."""
    if not isinstance(csr_pem, str) or len(csr_pem) > MAX_CSR_CHARS:
        raise CsrError(f"csr must be a PEM certificate request of at most {MAX_CSR_CHARS} chars")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        valid = csr.is_signature_valid
        public = csr.public_key()
    except UnsupportedAlgorithm:  # a key or signature algorithm cryptography cannot read
        raise CsrError("csr key must be EC P-256 or Ed25519") from None
    except (ValueError, UnicodeEncodeError, TypeError):
        raise CsrError("csr is not a PEM certificate request") from None
    if not valid:
        raise CsrError("csr's self-signature does not verify")
    if isinstance(public, ed25519.Ed25519PublicKey):
        return public
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return public
    raise CsrError("csr key must be EC P-256 or Ed25519")


def load(keys_dir: Path) -> ClientCA | None:
    """The issuing CA, or None when this server holds no client CA key."""
    cert_path, key_path = paths(keys_dir)
    if not key_path.exists():
        return None
    raw = read_private_file(key_path, "client CA key", max_bytes=16384)
    try:
        key = serialization.load_pem_private_key(raw, password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as e:
        raise KeyFormatError(f"client CA in {keys_dir} is unreadable: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFormatError(f"{key_path} is not an EC key")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise KeyFormatError(f"{key_path} does not match {cert_path}")
    return ClientCA(cert, key)


_cache: dict[bytes, str | None] = {}
_cache_lock = threading.Lock()


def appliance_of(der: bytes | None) -> str | None:
    """The appliance id a (TLS-verified) client certificate names: its one URI SAN
    ``urn:osiris:appliance:<id>``; None for no certificate, none or several such names."""
    if not der:
        return None
    with _cache_lock:
        if der in _cache:
            return _cache[der]
    try:
        cert = x509.load_der_x509_certificate(der)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = [u for u in sans.get_values_for_type(x509.UniformResourceIdentifier)
                if u.startswith(URN_PREFIX)]  # fmt: skip
    except (ValueError, x509.ExtensionNotFound):
        uris = []
    found = uris[0][len(URN_PREFIX) :] if len(uris) == 1 else None
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[der] = found
    return found


def require_for(der: bytes | None, appliance_id: str) -> None:
    """Under mTLS an appliance's token counts only with its own certificate: 403 otherwise."""
    named = appliance_of(der)
    if named == appliance_id:
        return
    if der is None:
        why = "no client certificate was presented"
    elif named is None:
        why = f"the client certificate names no appliance ({URN_PREFIX}<id> URI SAN)"
    else:
        why = "the client certificate belongs to another appliance"
    raise HttpError(
        403, "E_CLIENT_CERT",
        f"this server requires the appliance's own client certificate (mTLS): {why}",
    )  # fmt: skip
