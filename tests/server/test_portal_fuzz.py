"""Random input to every portal route, signed in or not: never a 500, never a traceback, always
an HTML page (or a redirect, a stylesheet or the logo), and no write to anything but the
sign-in tables and the audit (both engines)."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osiris_server.app import build_router
from tests.server.portal_fixture import Portal

ROUTES = [(r.method, r.template) for r in build_router().routes
          if r.template.startswith("/portal")]  # fmt: skip
SIGN_IN_TABLES = {"portal_requests", "portal_links", "portal_sessions", "audit"}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(ROUTES),
    param=st.text(alphabet=st.characters(codec="ascii"), max_size=80),
    body=st.binary(max_size=300) | st.dictionaries(st.text(max_size=10), st.text(max_size=40)),
    cookie=st.none() | st.text(alphabet=st.characters(codec="ascii"), max_size=60),
)
def test_random_input_never_500_and_writes_only_sign_in_state(
    portal: Portal,
    route,
    param,
    body,
    cookie,
) -> None:
    method, template = route
    path = template.replace("{token}", param or "x").replace("{digest}", param or "x")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie is not None:
        headers["Cookie"] = f"osiris_portal={cookie}"
    before = {t: rows for t, rows in portal.server.index_rows().items()
              if t not in SIGN_IN_TABLES}  # fmt: skip
    with httpx.Client(base_url=portal.server.url, timeout=20) as c:
        try:
            if isinstance(body, dict):
                r = c.request(method, path, data=body if method == "POST" else None,
                              headers=headers)  # fmt: skip
            else:
                r = c.request(method, path, content=body if method == "POST" else None,
                              headers=headers)  # fmt: skip
        except (httpx.InvalidURL, httpx.LocalProtocolError):
            return  # httpx refuses to send that path or header at all
    assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
    assert "Traceback" not in r.text
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("text/"):
        assert r.headers["content-type"].startswith(("text/html", "text/plain"))
    after = {t: rows for t, rows in portal.server.index_rows().items() if t not in SIGN_IN_TABLES}
    assert after == before
