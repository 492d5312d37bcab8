"""JSON nested deeper than ``canonical.MAX_DEPTH`` is a 400 ``E_SCHEMA`` at every entry point
that parses JSON — never a 500 from ``RecursionError`` — and changes nothing. Real server over
loopback; the route list comes from the server's own router, so a new JSON endpoint is covered
without editing this file."""

from __future__ import annotations

import re

import pytest

from osiris_core.canonical import MAX_DEPTH
from osiris_server.app import build_router


def deep(depth: int, leaf: bytes = b"1") -> bytes:
    """``depth`` nested arrays around ``leaf`` inside a one-key object (depth + 1 in all)."""
    return b'{"x":' + b"[" * depth + leaf + b"]" * depth + b"}"


def _json_routes() -> list:
    return [r for r in build_router().routes if r.body is not None or r.body_spec is not None]


def _path(template: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "x", template)


@pytest.mark.parametrize("depth", [MAX_DEPTH, 1000, 100_000])
def test_every_json_endpoint_refuses_deep_nesting_with_e_schema(server, depth: int) -> None:
    site = server.site("Depth clinic")
    appliance = server.enroll(site["id"])
    pkey = server.admin.post("/api/v1/partners", json={"name": "P"}).json()["api_key"]
    log_before = server.client(appliance.token).get("/api/v1/log/checkpoint").json()["size"]
    sites_before = server.admin.get("/api/v1/sites").json()
    routes = _json_routes()
    assert len(routes) >= 15  # sites, credentials, checkin, evidence, incidents, orders, ...
    body = deep(depth)  # depth + 1 levels: one beyond the limit at the smallest case
    for r in routes:
        if r.auth == "appliance":
            c = server.client(appliance.token)
        elif r.auth == "none":
            c = server.client()
        elif "admin" in r.roles:
            c = server.admin
        else:
            c = server.client(api_key=pkey)
        resp = c.request(
            r.method,
            _path(r.template),
            content=body,
            headers={"Content-Type": "application/json"},
        )
        where = f"{r.method} {r.template}"
        assert resp.status_code == 400, (where, resp.status_code, resp.text[:200])
        assert resp.headers["content-type"] == "application/json", where
        err = resp.json()["error"]
        assert err["code"] == "E_SCHEMA", (where, err)
        assert f"deeper than {MAX_DEPTH}" in err["message"], (where, err)
    # nothing changed anywhere
    assert server.admin.get("/api/v1/sites").json() == sites_before
    log_after = server.client(appliance.token).get("/api/v1/log/checkpoint").json()["size"]
    assert log_after == log_before


def test_the_limit_is_exact_and_applies_inside_free_form_fields(server) -> None:
    """A free-form object (incident details) nested to the limit is accepted and processed;
    one level more is refused and stores nothing."""
    site = server.site("Incident clinic")
    a = server.client(server.enroll(site["id"]).token)

    def body(levels: int) -> bytes:
        # {"incidents":[{..., "details": <levels-2 nested objects>}]} has `levels` levels
        inner = b'{"k":' * (levels - 3) + b"1" + b"}" * (levels - 3)
        return (
            b'{"incidents":[{"kind":"disk_full","severity":"warning","host_id":"dc01",'
            b'"summary":"deep details","details":' + inner + b"}]}"
        )

    def reported() -> list[str]:
        got = server.admin.get("/api/v1/incidents", params={"site": site["id"]}).json()
        return [i["summary"] for i in got["incidents"] if i["kind"] == "disk_full"]

    headers = {"Content-Type": "application/json"}
    r = a.post("/api/v1/incidents", content=body(MAX_DEPTH + 1), headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA", r.text
    assert reported() == []
    r = a.post("/api/v1/incidents", content=body(MAX_DEPTH), headers=headers)
    assert r.status_code in (200, 201), r.text
    assert reported() == ["deep details"]


def test_a_deep_envelope_inside_an_evidence_batch_is_rejected_alone(server) -> None:
    """Envelopes may travel as canonical JSON text; a deep one is that envelope's E_SCHEMA,
    the log does not grow, and the batch answer itself is well-formed."""
    site = server.site("Evidence clinic")
    ap = server.enroll(site["id"])
    c = server.client(ap.token)
    size = c.get("/api/v1/log/checkpoint").json()["size"]
    text = "[" * 100 + "]" * 100
    r = c.post("/api/v1/evidence", json={"envelopes": [text]})
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["status"] == "rejected" and res["error"]["code"] == "E_SCHEMA", res
    assert c.get("/api/v1/log/checkpoint").json()["size"] == size
