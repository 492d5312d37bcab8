"""``/healthz`` and the OpenAPI document (generated from the router, so it cannot drift).
The learning candidates moved to ``api/learning.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osiris_server.http import (
    F,
    Request,
    Response,
    Route,
    json_response,
    object_schema,
    to_schema,
)

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.http import Router


def healthz(app: App, req: Request) -> Response:
    # liveness only: an unauthenticated caller learns nothing (not even the log's size)
    return json_response({"status": "ok"})


def openapi(app: App, req: Request) -> Response:
    return json_response(build_openapi(app.router))


# The one error shape of the API (osiris_server.http.error_body), as a spec like every other body.
ERROR_SPEC: dict[str, F] = {
    "error": F(
        "object",
        required=True,
        fields={
            "code": F("string", required=True, max_len=None),
            "message": F("string", required=True, max_len=None),
        },
    )
}


def build_openapi(router: Router) -> dict[str, Any]:
    """One OpenAPI 3.1 operation per route; bodies, query parameters and (where a route names
    one) the success body are generated from the same specs the app validates with, the
    check-in's from ``osiris_core.protocol``: no schema here is written by hand but the error
    shape, which ``ERROR_SPEC`` generates too."""
    paths: dict[str, Any] = {}
    for r in router.routes:
        if r.template.startswith("/portal"):  # HTML for people (osiris_server/portal/): no API
            continue
        success = object_schema(r.response) if r.response is not None else {"type": "object"}
        op: dict[str, Any] = {
            "operationId": f"{r.method.lower()}_{r.template.strip('/').replace('/', '_')}".replace(
                "{", ""
            )
            .replace("}", "")
            .replace("-", "_")
            .replace(".", "_"),
            "summary": r.summary,
            "tags": [r.tag] if r.tag else [],
            "responses": {
                str(r.status): {
                    "description": "success",
                    "content": {"application/json": {"schema": success}},
                },
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": object_schema(ERROR_SPEC)}},
                },
            },
        }
        params = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in r.names
        ]
        params += [
            {"name": n, "in": "query", "required": f.required, "schema": to_schema(f)}
            for n, f in r.query.items()
        ]
        if params:
            op["parameters"] = params
        spec = r.body if r.body is not None else r.body_spec
        if spec is not None:
            op["requestBody"] = {
                "required": bool(r.body) or r.body_spec is not None,
                "content": {"application/json": {"schema": object_schema(spec)}},
            }
        elif r.media_type != "application/json":  # raw bytes (a packet zip), read by the handler
            op["requestBody"] = {
                "required": True,
                "content": {r.media_type: {"schema": {"type": "string", "format": "binary"}}},
            }
        if r.auth == "appliance":
            op["security"] = [{"applianceToken": []}]
        elif r.auth == "staff":
            op["security"] = [{"operatorToken": []}, {"partnerKey": []}]
            op["x-roles"] = list(r.roles)
        elif r.auth == "any":
            op["security"] = [{"applianceToken": []}, {"operatorToken": []}, {"partnerKey": []}]
        else:
            op["security"] = []
        paths.setdefault(r.template, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Osiris Central Command", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "applianceToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "oak_… appliance token",
                },
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "osk_… operator token",
                },
                "partnerKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "opk_… partner API key",
                },
            }
        },
    }


ROUTES = [
    Route("GET", "/healthz", healthz, "none", summary="Liveness", tag="meta"),
    Route("GET", "/api/v1/openapi.json", openapi, "none", summary="This document", tag="meta"),
]
