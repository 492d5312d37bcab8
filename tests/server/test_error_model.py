"""Issue 12: what a core error escaping a handler answers, through the real WSGI app and server.

A client-input class of ``osiris_core.errors`` (http_status 4xx) answers with its status, code
and message; any other ``OsirisError`` is our fault and answers a generic 500 that carries
nothing of its internal message. The routes are added to a real app for the test only.
"""

from __future__ import annotations

import httpx
import pytest

from osiris_core import errors as E
from osiris_server.http import HttpError, Response, Route

RAISE = {
    "base": E.OsirisError("internal detail: /var/lib/osiris/keys/log.key is odd"),
    "internal": E.InternalError("internal detail: a state that cannot happen"),
    "key_perms": E.KeyPermissionError("internal detail: keys/order.key is 0644"),
    "schema": E.SchemaError("bundle.seq must be an integer"),
    "canonical": E.CanonicalError("not canonical", "E_NONCANONICAL"),
    "not_found": E.NotFoundError("no such thing"),
    "conflict": E.ConflictError("already there"),
    "input": E.InputError("bad input"),
    "auth": E.AuthRefusedError("who are you"),
}


def _raiser(app, req, kind: str) -> Response:  # noqa: ANN001
    raise RAISE[kind]


@pytest.fixture
def url(server) -> str:
    server.app.router.add(Route("GET", "/api/v1/test-raise/{kind}", _raiser, "none"))
    return server.url


@pytest.mark.parametrize("kind", ["base", "internal", "key_perms"])
def test_a_non_input_core_error_is_a_generic_500(url, kind) -> None:
    r = httpx.get(f"{url}/api/v1/test-raise/{kind}")
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "E_INTERNAL", "message": "internal error"}}
    assert "internal detail" not in r.text


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("schema", 400, "E_SCHEMA"),
        ("canonical", 400, "E_NONCANONICAL"),
        ("not_found", 404, "E_NOT_FOUND"),
        ("conflict", 409, "E_CONFLICT"),
        ("input", 400, "E_INPUT"),
        ("auth", 401, "E_AUTH"),
    ],
)
def test_a_client_input_error_keeps_its_status_code_and_message(url, kind, status, code) -> None:
    r = httpx.get(f"{url}/api/v1/test-raise/{kind}")
    assert r.status_code == status
    assert r.json() == {"error": {"code": code, "message": str(RAISE[kind])}}


def test_http_error_is_a_member_of_the_tree() -> None:
    e = HttpError(404, "E_NOT_FOUND", "site not found")
    assert isinstance(e, E.OsirisError)
    assert (e.http_status, e.code, str(e)) == (404, "E_NOT_FOUND", "site not found")
    assert e.exit_code == E.ExitCode.USAGE
    assert HttpError(401, "E_AUTH", "x").exit_code == E.ExitCode.AUTH
    assert HttpError(503, "E_LOG", "x").exit_code == E.ExitCode.UNREACHABLE


def test_every_core_class_carries_a_status_and_an_exit_code() -> None:
    classes = [c for c in vars(E).values() if isinstance(c, type) and issubclass(c, E.OsirisError)]
    assert len(classes) >= 15
    for c in classes:
        assert 400 <= c.http_status <= 599, c
        assert c.exit_code in set(E.ExitCode) - {E.ExitCode.OK}, c
    assert [int(c) for c in E.ExitCode] == [0, 1, 2, 3, 4, 5]
