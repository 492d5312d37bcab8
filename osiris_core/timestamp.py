"""RFC 3161 time-stamp tokens over log checkpoints: what an auditor checks offline.

Why: a checkpoint is signed by the MSP's own log key, and the MSP's clock says when. A token
from an independent Time-Stamp Authority (TSA) proves the checkpoint — and so every bundle it
covers — existed by the TSA's ``genTime``, which the MSP cannot move. The server stores one token
per checkpoint size and TSA (osiris_server/tsa.py); exports and packets carry it as
``checkpoint.tsr`` (the DER TimeStampResp as the TSA sent it) beside ``checkpoint``.

What is timestamped is the checkpoint BODY: the signed note's text up to and including its
first blank line (``origin\\nsize\\nroot\\n\\n``), hashed with SHA-256 — the same bytes whatever
cosignature lines a served copy carries. ``checkpoint_body`` cuts it.

The ASN.1 and CMS work is ``rfc3161-client`` (Trail of Bits; it verifies the PKCS#7 signature
against the pinned chain at genTime, the critical timeStamping EKU, the imprint and the nonce):
no hand-written parser here. A base dependency (every verifier must read a token the same way:
report.json names its time); still imported lazily, so this module loads without it and says
what to install when a token is actually checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from . import canonical
from .errors import OsirisError

TSR_NAME = "checkpoint.tsr"  # the token's file name in an export and a packet
MAX_TOKEN_BYTES = 64 * 1024  # a TimeStampResp with its certificate chain is a few KiB
SHA256_OID = "2.16.840.1.101.3.4.2.1"


class TsaError(OsirisError):
    """A token that does not verify, covers another checkpoint, or cannot be read."""

    code = "E_TSA"


def checkpoint_body(note: str | bytes) -> bytes:
    """The bytes a token covers: the note text up to and including its first blank line."""
    text = note.decode("utf-8") if isinstance(note, bytes) else note
    cut = text.find("\n\n")
    if cut < 0:
        raise TsaError("the checkpoint is not a signed note (no blank line)")
    return text[: cut + 2].encode("utf-8")


def body_sha256(note: str | bytes) -> str:
    """Hex sha256 of the checkpoint body (``tsa_anchors.checkpoint_sha256``)."""
    return hashlib.sha256(checkpoint_body(note)).hexdigest()


def _lib() -> Any:
    try:
        import rfc3161_client
    except ImportError:  # pragma: no cover - the extra is in every test venv
        raise TsaError(
            "checking RFC 3161 tokens needs rfc3161-client: pip install rfc3161-client"
        ) from None
    return rfc3161_client


def _decode(der: bytes) -> Any:
    if not isinstance(der, bytes | bytearray) or not der:
        raise TsaError("the token is empty")
    if len(der) > MAX_TOKEN_BYTES:
        raise TsaError(f"the token is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        return _lib().decode_timestamp_response(bytes(der))
    except TsaError:
        raise
    except Exception as e:  # noqa: BLE001 - the library raises ValueError or its own types
        raise TsaError(f"not a DER TimeStampResp: {_short(e)}") from None


def _short(e: BaseException) -> str:
    """The library's messages carry OpenSSL error stacks; the reason is the first part."""
    msg = str(e)
    for mark in ("ErrorStack", "\n"):
        if mark in msg:
            msg = msg[: msg.index(mark)].rstrip(" :")
    return msg[:200] or type(e).__name__


def _tsa_name(resp: Any) -> str:
    """The TSA's name as the token states it (tsa field), else its signing certificate's."""
    try:
        name = resp.tst_info.name
        value = getattr(name, "value", None)
        if value is not None:
            return value.rfc4514_string() if hasattr(value, "rfc4514_string") else str(value)
    except Exception:  # noqa: BLE001 - the optional tsa field is absent
        pass
    try:
        from cryptography import x509

        si = next(iter(resp.signed_data.signer_infos))
        for der in resp.signed_data.certificates:
            cert = x509.load_der_x509_certificate(der)
            if cert.issuer == si.issuer and cert.serial_number == si.serial_number:
                return cert.subject.rfc4514_string()
    except Exception:  # noqa: BLE001 - no certificate in the token: unnamed
        pass
    return "unnamed TSA"


def token_info(der: bytes) -> dict[str, str]:
    """``{"gen_time", "tsa"}`` of a token, unverified (for a report; ``verify_token`` trusts)."""
    resp = _decode(der)
    try:
        gen = canonical.format_time(resp.tst_info.gen_time)
    except Exception as e:  # noqa: BLE001 - a reply without a TSTInfo (status not granted)
        raise TsaError(f"the token has no time: {_short(e)}") from None
    return {"gen_time": gen, "tsa": _tsa_name(resp)}


def covers(der: bytes, checkpoint: str | bytes) -> bool:
    """Whether the token's imprint is SHA-256 of this checkpoint's body (unverified)."""
    resp = _decode(der)
    try:
        imprint = resp.tst_info.message_imprint
    except Exception as e:  # noqa: BLE001 - a reply without a TSTInfo
        raise TsaError(f"the token has no imprint: {_short(e)}") from None
    digest = hashlib.sha256(checkpoint_body(checkpoint)).digest()
    return imprint.hash_algorithm.dotted_string == SHA256_OID and imprint.message == digest


def load_pems(pems: Iterable[bytes]) -> list[Any]:
    """Every certificate in the given PEM blobs (a pinned chain may hold several)."""
    from cryptography import x509

    certs: list[Any] = []
    for pem in pems:
        try:
            certs += x509.load_pem_x509_certificates(bytes(pem))
        except ValueError as e:
            raise TsaError(f"not a PEM certificate chain: {_short(e)}") from None
    if not certs:
        raise TsaError("no TSA certificate pinned")
    return certs


def verify_token(
    der: bytes, checkpoint: str | bytes, ca_pems: Iterable[bytes], nonce: int | None = None
) -> dict[str, str]:
    """Check ``der`` against the pinned TSA chain and the checkpoint it must cover; returns
    ``token_info`` plus ``sha256`` (of the body). ``checkpoint``: the note (or its body).
    ``nonce``: the request's, when checking a fresh reply (the server). Raises ``TsaError``
    naming what failed: unreadable, not granted, wrong TSA chain, no timeStamping EKU, another
    digest (another checkpoint), another nonce."""
    lib = _lib()
    certs = load_pems(ca_pems)
    resp = _decode(der)
    if int(resp.status) not in (0, 1):  # granted / grantedWithMods
        raise TsaError(f"the TSA refused the request (PKIStatus {int(resp.status)})")
    body = checkpoint_body(checkpoint)
    digest = hashlib.sha256(body).digest()
    roots = [c for c in certs if c.issuer == c.subject]
    others = [c for c in certs if c.issuer != c.subject]
    builder = lib.VerifierBuilder(roots=roots or certs, intermediates=others if roots else [])
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:
        imprint = resp.tst_info.message_imprint
        if imprint.hash_algorithm.dotted_string != SHA256_OID:
            raise TsaError("the token is not over a SHA-256 digest")
        if imprint.message != digest:
            raise TsaError("the token covers another checkpoint (digest differs)")
        builder.build().verify(resp, digest)
    except TsaError:
        raise
    except lib.VerificationError as e:
        msg = _short(e)
        if "certificate" in msg or "pkcs7" in msg.lower():
            msg = f"not signed by the pinned TSA chain: {msg}"
        raise TsaError(msg) from None
    except Exception as e:  # noqa: BLE001 - a malformed token the library could not walk
        raise TsaError(f"the token does not verify: {_short(e)}") from None
    return {**token_info(der), "sha256": digest.hex()}


__all__ = [
    "MAX_TOKEN_BYTES",
    "TSR_NAME",
    "TsaError",
    "body_sha256",
    "checkpoint_body",
    "covers",
    "load_pems",
    "token_info",
    "verify_token",
]
