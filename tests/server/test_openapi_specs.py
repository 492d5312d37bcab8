"""The OpenAPI document is generated from the spec trees the code validates with (issue 12 item 3):
the check-in request and answer from ``osiris_core.protocol``, every other body from its route's
specs. A change to a spec shows in the document and in validation at once."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from osiris_core import ids, protocol
from osiris_core.errors import SchemaError
from osiris_core.schema import F, object_schema
from osiris_server.api import meta
from osiris_server.api.meta import build_openapi
from osiris_server.app import build_router

REQUEST: dict[str, Any] = {
    "appliance_id": "app-1", "agent_version": "0.1.0", "log_size_seen": 0,
    "status": {"uptime_s": 1, "outbox_depth": 0, "chain_head": "sha256:" + "0" * 64,
               "seq": 0, "clock": {"ntp_ok": True, "offset_ms": 0, "source": "x"},
               "checks": [{"host_id": "dc01", "check": "timesync", "status": "drift",
                           "since": "2026-01-01T00:00:00.000Z"}]},
}  # fmt: skip


def _checkin_op(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["paths"]["/api/v1/checkin"]["post"]


def _request_schema(doc: dict[str, Any]) -> dict[str, Any]:
    return _checkin_op(doc)["requestBody"]["content"]["application/json"]["schema"]


def test_checkin_schemas_are_the_protocol_specs() -> None:
    doc = build_openapi(build_router())
    assert _request_schema(doc) == object_schema(protocol.CHECKIN_REQUEST)
    answer = _checkin_op(doc)["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == object_schema(protocol.CHECKIN_RESPONSE)
    # The id grammar reaches the document: the same pattern the validator uses.
    host = _request_schema(doc)["properties"]["status"]["properties"]["checks"]["items"]
    assert host["properties"]["host_id"]["pattern"] == f"^{ids.HOST_ID.pattern}$"


def test_a_spec_change_shows_in_the_document_and_in_validation(monkeypatch) -> None:
    monkeypatch.setitem(protocol.CHECKIN_REQUEST, "site_hint", F.of(ids.SITE_ID, required=True))
    doc = build_openapi(build_router())
    schema = _request_schema(doc)
    assert "site_hint" in schema["required"]
    assert schema["properties"]["site_hint"]["pattern"] == f"^{ids.SITE_ID.pattern}$"
    with pytest.raises(SchemaError, match="^missing field site_hint$"):
        protocol.validate_checkin_request(REQUEST)
    protocol.validate_checkin_request({**REQUEST, "site_hint": "site-00"})


def test_every_body_and_query_is_generated_from_its_route_spec() -> None:
    router = build_router()
    doc = build_openapi(router)
    for r in router.routes:
        if r.template.startswith("/portal"):  # HTML pages, deliberately not in the API document
            assert r.template not in doc["paths"]
            continue
        op = doc["paths"][r.template][r.method.lower()]
        spec = r.body if r.body is not None else r.body_spec
        if spec is not None:
            assert op["requestBody"]["content"]["application/json"]["schema"] == (
                object_schema(spec)
            )
        elif r.media_type != "application/json":  # a raw body (a packet zip): its media type
            assert op["requestBody"]["content"] == {
                r.media_type: {"schema": {"type": "string", "format": "binary"}}
            }
        else:
            assert "requestBody" not in op


def test_no_schema_is_written_by_hand_in_meta() -> None:
    source = inspect.getsource(meta)
    assert '"properties"' not in source and '"additionalProperties"' not in source
