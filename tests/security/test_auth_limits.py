"""Failed-authentication limiting is per presented token and per source, never global: a
client flooding the server with bad tokens is throttled (429, ``Retry-After``, the JSON error
shape) while good tokens from the *same* address — a fleet behind one proxy — keep working, and
other addresses are not affected at all. Real server on loopback; a second source address is a
real socket bound to 127.0.0.2."""

from __future__ import annotations

import secrets

import httpx

WINDOW_S = 60


def _bad(n: int) -> list[str]:
    return [f"osk_{secrets.token_urlsafe(32)}" for _ in range(n)]


def _from(server, source: str, token: str | None = None) -> httpx.Client:
    """A client whose connections leave from ``source`` (another loopback address)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    c = httpx.Client(
        base_url=server.url,
        headers=headers,
        timeout=20,
        transport=httpx.HTTPTransport(local_address=source),
    )
    server.clients.append(c)
    return c


def _assert_429(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "error": {"code": "E_RATE_LIMIT", "message": "too many failed attempts; try again later"}
    }
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= WINDOW_S


def test_a_flood_of_random_bad_tokens_is_throttled_but_good_tokens_from_that_address_work(
    server_factory,
) -> None:
    server = server_factory(auth_fail_limit=5, auth_fail_source_limit=10)
    site = server.site("Behind the proxy")
    appliance = server.enroll(site["id"])
    sites_before = server.admin.get("/api/v1/sites").json()
    audit_before = server.admin.get("/api/v1/audit").json()
    anon = server.client()
    # every request presents a different bad token: the per-token limit never trips, the
    # per-source one does after 10 failures
    codes = []
    for tok in _bad(14):
        r = anon.get("/api/v1/sites", headers={"Authorization": f"Bearer {tok}"})
        codes.append(r.status_code)
        if r.status_code == 429:
            _assert_429(r)
        else:
            assert r.json()["error"]["code"] == "E_AUTH"
    assert codes == [401] * 10 + [429] * 4
    # partner keys and appliance-looking tokens are the same flood
    r = anon.get("/api/v1/sites", headers={"X-API-Key": "opk_" + secrets.token_urlsafe(32)})
    _assert_429(r)
    r = anon.post("/api/v1/checkin", json={}, headers={"Authorization": "Bearer oak_nope"})
    _assert_429(r)
    # ... while every good credential from the same address is served as usual
    assert server.admin.get("/api/v1/sites").status_code == 200
    r = server.client(appliance.token).get("/api/v1/log/checkpoint")
    assert r.status_code == 200, r.text
    # another address is not touched by this one's flood: its first bad token is a plain 401
    r = _from(server, "127.0.0.2", _bad(1)[0]).get("/api/v1/sites")
    assert r.status_code == 401 and r.json()["error"]["code"] == "E_AUTH"
    # nothing changed: the refusals created nothing and recorded nothing in the audit log
    assert server.admin.get("/api/v1/sites").json() == sites_before
    assert server.admin.get("/api/v1/audit").json() == audit_before


def test_one_bad_token_repeated_is_throttled_wherever_it_comes_from(server_factory) -> None:
    server = server_factory(auth_fail_limit=3, auth_fail_source_limit=100)
    (tok,) = _bad(1)
    here = server.client(tok)
    codes = [here.get("/api/v1/sites").status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    _assert_429(here.get("/api/v1/sites"))
    # the same value from another address is still that throttled token
    _assert_429(_from(server, "127.0.0.2", tok).get("/api/v1/sites"))
    # a different bad token from the first address is only unauthenticated (source under limit)
    r = server.client(_bad(1)[0]).get("/api/v1/sites")
    assert r.status_code == 401 and r.json()["error"]["code"] == "E_AUTH"
    # and good tokens everywhere are served
    assert server.admin.get("/api/v1/sites").status_code == 200
    assert _from(server, "127.0.0.2", server.admin_token).get("/api/v1/sites").status_code == 200


def test_retry_after_counts_down_to_the_end_of_the_window(server_factory) -> None:
    server = server_factory(auth_fail_limit=2, auth_fail_source_limit=50, auth_fail_window_s=30)
    bad = server.client(_bad(1)[0])
    for _ in range(2):
        assert bad.get("/api/v1/sites").status_code == 401
    r = bad.get("/api/v1/sites")
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 30
