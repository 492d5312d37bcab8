"""Monthly evidence packets: the server signs a packet manifest's hash with its log key.

Why the log key: auditors already pin it to check checkpoints, so a packet needs no new trust
root. The server does not see the packet; it attests "this manifest hash is the <month> packet of
<site>", in a note whose body cannot be mistaken for a checkpoint (osiris_core.packet). Every
signature is audited, so the MSP's record shows which packets it vouched for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osiris_core.note import sign_note
from osiris_core.packet import manifest_note_text
from osiris_server.api.common import ID_PATTERN, audit, read, site_for
from osiris_server.http import F, Request, Response, json_response

if TYPE_CHECKING:
    from osiris_server.app import App

SIGN = {
    "site_id": F("string", required=True, pattern=ID_PATTERN, max_len=63),
    "month": F("string", required=True, pattern=r"\d{4}-(0[1-9]|1[0-2])", max_len=7),
    "manifest_sha256": F(
        "string",
        required=True,
        pattern=r"[0-9a-f]{64}",
        max_len=64,
        description="lowercase hex SHA-256 of the canonical manifest.json bytes",
    ),
}


def sign(app: App, req: Request) -> Response:
    body = req.data
    site_for(app, req.principal, body["site_id"])  # 404 for a site this caller may not see
    text = manifest_note_text(body["site_id"], body["month"], body["manifest_sha256"])
    note = sign_note(text, [app.log_signer])
    with app.db.write() as w:
        audit(
            w,
            req,
            "packet.sign",
            body["site_id"],
            body["site_id"],
            {"month": body["month"], "manifest_sha256": body["manifest_sha256"]},
        )
    return json_response({"note": note, "log_vkey": app.log_signer.vkey})


ROUTES = [
    # Read roles: auditors and a clinic's own client token may build their packet; signing
    # changes no evidence, and the audit log records each request.
    read(
        "POST",
        "/api/v1/packets/sign",
        sign,
        body=SIGN,
        summary="Sign a monthly packet manifest hash with the log key (audited)",
        tag="evidence",
    ),
]
