"""Appliance: renew its mTLS client certificate before it expires.

Why a route of its own: a certificate issued at the claim lasts 397 days; without renewal every
appliance would lock itself out after thirteen months. Under mTLS the request is authenticated by
the token *and* the current, still valid certificate (osiris_server/client_ca.py), so renewal
cannot resurrect an appliance whose key was lost or whose certificate already expired: that one
is re-enrolled. Without mTLS renewal is refused: the token alone would then mint certificates.
The new certificate names the same appliance; the requested subject is ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osiris_server import client_ca
from osiris_server.api.common import audit
from osiris_server.http import F, HttpError, Request, Response, Route, bad_request, json_response

if TYPE_CHECKING:
    from osiris_server.app import App

RENEW = {
    "csr": F(
        "string",
        required=True,
        max_len=client_ca.MAX_CSR_CHARS,
        description="PEM certificate request (EC P-256 or Ed25519); only its public key is used",
    ),
}


def renew(app: App, req: Request) -> Response:
    ca = client_ca.load(app.cfg.keys_dir)
    if ca is None:
        raise HttpError(409, "E_NO_CLIENT_CA", "this server issues no client certificates")
    if not req.environ.get("osiris.mtls"):
        # without mTLS the token alone would do: a thief of it could mint a certificate for
        # its own key now and keep using it once mTLS is turned on
        raise HttpError(
            409, "E_MTLS_REQUIRED",
            "client certificates are renewed only over mTLS (serve --client-ca), with the "
            "current certificate",
        )  # fmt: skip
    p = req.principal
    try:
        pem, sha = ca.issue(req.data["csr"], p.id)
    except client_ca.CsrError as e:
        raise bad_request(str(e), "E_CSR") from None
    with app.db.write() as w:
        audit(w, req, "appliance.client_cert", p.id, p.site_id, {"client_cert_sha256": sha})
    return json_response({"client_cert": pem, "sha256": sha}, 201)


ROUTES = [
    Route(
        "POST",
        "/api/v1/client-cert",
        renew,
        "appliance",
        body=RENEW,
        status=201,
        summary="Appliance: renew its mTLS client certificate (same appliance, new key allowed)",
        tag="appliance",
    ),
]
