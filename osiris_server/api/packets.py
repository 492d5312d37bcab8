"""The packet store's routes: upload a site's packet zip, list a site's packets.

``POST /api/v1/sites/{site_id}/packets`` (admin, operator; a partner for its own sites): the body
is the zip itself (``Content-Type: application/zip``, at most the server's
``max_packet_bytes``, 512 MiB by default).
It must be an intact packet of that site (``osiris_server/packet_store.py``: manifest site_id,
period, every file's sha256); stored as ``<data>/packets/<sha256>.zip`` with a ``packets`` row
and an audit line; the same bytes again answer 200 with ``"new": false`` and change nothing.
The WORM copy puts every stored packet in the Object Lock bucket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osiris_server.api.common import LIMIT, audit, read, site_for, write
from osiris_server.db import packets as db_packets
from osiris_server.db.util import now
from osiris_server.http import F, Request, Response, json_response
from osiris_server.packet_store import inspect, store_file

if TYPE_CHECKING:
    from osiris_server.app import App

PACKET = {
    "sha256": F("string", required=True),
    "site_id": F("string", required=True),
    "period_start": F("string", required=True),
    "period_end": F("string", required=True),
    "month": F("string"),
    "bytes": F("integer", required=True),
    "stored_at": F("string", required=True),
    "stored_by": F("string", required=True),
}
UPLOADED = {"packet": F("object", required=True, fields=PACKET), "new": F("boolean", required=True)}
LISTED = {"packets": F("array", required=True, items=F("object", fields=PACKET))}


def upload(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    meta = inspect(req.body, site_id)
    sha = meta["sha256"]
    old = db_packets.get(app.db, sha)
    if old is not None:
        return json_response({"packet": old, "new": False})
    rel = store_file(app.cfg.data, sha, req.body)  # the file first: a row always has its file
    row = {**meta, "path": rel, "stored_at": now(), "stored_by": req.principal.actor}
    with app.db.write() as w:
        new = db_packets.insert_new(w, row)  # False: another request stored these bytes just now
        if new:
            audit(w, req, "packet.store", sha, site_id, {"month": meta["month"],
                                                        "bytes": meta["bytes"]})  # fmt: skip
    row.pop("path")
    return json_response({"packet": row, "new": new}, 201 if new else 200)


def listing(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    rows = db_packets.for_site(app.db, site_id, req.params.get("limit", 100))
    return json_response({"packets": rows})


ROUTES = [
    write(
        "POST",
        "/api/v1/sites/{site_id}/packets",
        upload,
        media_type="application/zip",
        max_body="max_packet_bytes",
        summary="store a packet zip of this site (body: the zip; the WORM copy uploads it)",
        tag="packets",
        response=UPLOADED,  # 201 when stored now, 200 when these bytes were already stored
    ),
    read(
        "GET",
        "/api/v1/sites/{site_id}/packets",
        listing,
        query={"limit": LIMIT},
        summary="the site's stored packets, newest period first",
        tag="packets",
        response=LISTED,
    ),
]
