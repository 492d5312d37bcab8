"""RFC 3161 tokens over the log's checkpoints (osiris_server/tsa.py), for exports and packets.

``POST /api/v1/log/timestamp`` anchors a stored checkpoint now (``size``; default the newest) and
answers its token — the stored one if that size is already anchored, so a packet build can ask
every time. ``GET /api/v1/log/timestamp?size=N`` answers the stored token (404 if none). A token
reveals a size, a hash and a time, like a checkpoint; staff read it, operators cause a TSA call.
A server without ``[tsa]`` answers 409 ``E_TSA_NOT_CONFIGURED``; a TSA that cannot be reached,
503 ``E_TSA_UNAVAILABLE``; a reply that does not verify, 502 ``E_TSA_BAD_REPLY`` (not stored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osiris_server import tsa
from osiris_server.http import F, Request, Response, Route, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

READ = ("admin", "operator", "auditor", "partner", "client")
ANCHOR = ("admin", "operator")

TOKEN = {
    "size": F("integer", required=True, minimum=0),
    "sha256": F("string", required=True, max_len=64),
    "tsa_url": F("string", required=True, max_len=2048),
    "gen_time": F("string", required=True, max_len=40),
    "reason": F("string", required=True, enum=tsa.REASONS),
    "created_at": F("string", required=True, max_len=40),
    "token": F("string", required=True, max_len=90000, description="base64 DER TimeStampResp"),
}


def get_token(app: App, req: Request) -> Response:
    cfg = getattr(app.cfg, "tsa", None)
    row = tsa.stored(app, req.params["size"], cfg.url if cfg is not None else None)
    if row is None:
        row = tsa.stored(app, req.params["size"])  # a token of a TSA configured before
    if row is None:
        raise not_found("timestamp for that checkpoint")
    return json_response(row)


def post_anchor(app: App, req: Request) -> Response:
    return json_response(tsa.anchor(app, "packet", req.data.get("size")))


ROUTES = [
    Route(
        "GET",
        "/api/v1/log/timestamp",
        get_token,
        "staff",
        READ,
        query={"size": F("integer", required=True, minimum=0)},
        summary="The stored RFC 3161 token over checkpoint `size` (base64 DER TimeStampResp)",
        tag="log",
        response=TOKEN,
    ),
    Route(
        "POST",
        "/api/v1/log/timestamp",
        post_anchor,
        "staff",
        ANCHOR,
        body={"size": F("integer", minimum=0)},
        summary="Timestamp a stored checkpoint (default: the newest) with the server's TSA now; "
        "the stored token if that size is already anchored",
        tag="log",
        response=TOKEN,
    ),
]
