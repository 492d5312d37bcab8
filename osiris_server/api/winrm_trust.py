"""What a WinRM credential may say about trusting its listener's certificate, and how it
authenticates (issue 15 item 4); the agent side is ``osiris_agent/hosts/winrm_trust.py``.

* ``ca_bundle`` — PEM text of CA certificates only (at most 16, 64 KiB), each parsed as an
  X.509 certificate: garbage, a private key pasted by mistake (it would be stored unsealed, as a
  non-secret field) or anything but ``CERTIFICATE`` blocks is a 400.
* ``cert_thumbprint`` — SHA-256 of the listener's leaf certificate, 64 hex digits (colons and
  spaces are dropped, stored lower case). A 40-digit value is the SHA-1 "Thumbprint" Windows
  shows in certlm.msc: refused with the PowerShell line that prints the SHA-256 instead.
* One or the other (or neither: the agent trusts on first use and says so in evidence).
* ``auth`` — ``ntlm`` (default) or ``kerberos``; ``basic`` only for a lab host.
These fields mean something only to a WinRM credential and are refused elsewhere, like ``sudo``
is refused on WinRM.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

from osiris_core import ids
from osiris_server.http import F, bad_request

MAX_CA_BYTES = 65536
MAX_CERTS = 16
AUTHS = ("ntlm", "kerberos", "basic")
FIELDS = {
    "ca_bundle": F("string", max_len=MAX_CA_BYTES),
    "cert_thumbprint": F("string", max_len=128),
    "auth": F("string", enum=AUTHS),
}
KEYS = tuple(FIELDS)
_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----", re.S
)
SHA256_FROM_POWERSHELL = (
    "(Get-FileHash -Algorithm SHA256 -InputStream ([IO.MemoryStream]::new($cert.RawData))).Hash"
)


def _ca_bundle(text: str) -> str:
    if not text.strip():
        return ""
    blocks = list(_BLOCK.finditer(text))
    rest = _BLOCK.sub("", text).strip()
    if not blocks or rest:
        raise bad_request("ca_bundle must be PEM certificates only (-----BEGIN CERTIFICATE-----)",
                          "E_SCHEMA")  # fmt: skip
    kinds = {m.group(1) for m in blocks}
    if kinds != {"CERTIFICATE"}:
        raise bad_request(
            f"ca_bundle holds {', '.join(sorted(kinds - {'CERTIFICATE'}))}: only CA certificates "
            "belong here (never a private key)",
            "E_SCHEMA",
        )
    if len(blocks) > MAX_CERTS:
        raise bad_request(f"ca_bundle holds more than {MAX_CERTS} certificates", "E_SCHEMA")
    pem = "\n".join(m.group(0).replace("\r\n", "\n") for m in blocks) + "\n"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for m in blocks:
        try:
            ctx.load_verify_locations(cadata=m.group(0))
        except (ssl.SSLError, ValueError):
            raise bad_request("ca_bundle holds a block that is not an X.509 certificate",
                              "E_SCHEMA") from None  # fmt: skip
    return pem


def _thumbprint(text: str) -> str:
    t = re.sub(r"[\s:]", "", text).lower()
    if t == "":
        return ""
    if re.fullmatch(r"[0-9a-f]{40}", t):
        raise bad_request(
            "cert_thumbprint looks like the SHA-1 thumbprint Windows shows; give the SHA-256 of "
            f"the listener's certificate: {SHA256_FROM_POWERSHELL}",
            "E_SCHEMA",
        )
    if not ids.HEX64.match(t):
        raise bad_request("cert_thumbprint must be a SHA-256 (64 hex digits)", "E_SCHEMA")
    return t


def check(kind: str, merged: dict[str, Any]) -> dict[str, Any]:
    """Normalised ``ca_bundle``/``cert_thumbprint``/``auth`` of a credential as it will be
    stored (``merged`` = the row's values overlaid with the request's); 400 on anything else."""
    ca = merged.get("ca_bundle") or ""
    pin = merged.get("cert_thumbprint") or ""
    auth = merged.get("auth") or "ntlm"
    if kind != "winrm":
        if ca or pin or auth != "ntlm":
            raise bad_request(
                "ca_bundle, cert_thumbprint and auth are for winrm credentials only", "E_SCHEMA"
            )
        return {"ca_bundle": "", "cert_thumbprint": "", "auth": "ntlm"}
    out = {"ca_bundle": _ca_bundle(ca), "cert_thumbprint": _thumbprint(pin), "auth": auth}
    if out["ca_bundle"] and out["cert_thumbprint"]:
        raise bad_request("give ca_bundle or cert_thumbprint, not both", "E_SCHEMA")
    if auth == "basic" and not merged.get("lab"):
        raise bad_request("auth basic sends the password base64-encoded: lab hosts only",
                          "E_SCHEMA")  # fmt: skip
    return out
