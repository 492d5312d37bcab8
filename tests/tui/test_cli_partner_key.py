"""A reseller uses the `osiris` CLI with its partner API key (``opk_…``, issue 16).

The server reads partner keys from ``X-API-Key`` only (``Authorization: Bearer opk_…`` is
refused), so the client picks the header by the credential's prefix. Against a real
``osiris-server serve`` of this module's own (partners and their sites would disturb the
session's shared server): the partner sees only its sites, another partner's site is a plain
not-found, and a key revoked by rotation gets exit 4 naming where the key came from.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from osiris_server import auth
from osiris_tui import transport
from tests.tui.conftest import LiveServer, running
from tests.tui.test_cli import OSIRIS


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running(tmp_path_factory.mktemp("partner-cli")) as live:
        yield live


def _cli(srv: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=srv.url, OSIRIS_TOKEN=token, OSIRIS_PROFILE_FILE="/nonexistent")
    return subprocess.run([OSIRIS, *args], capture_output=True, text=True, env=env, timeout=60)


def _partner(srv: LiveServer, name: str) -> tuple[str, str]:
    with srv.admin() as h:
        r = h.post("/api/v1/partners", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["partner"]["id"], r.json()["api_key"]


def _site(srv: LiveServer, name: str, partner_id: str | None) -> str:
    body = {"name": name} | ({"partner_id": partner_id} if partner_id else {})
    with srv.admin() as h:
        r = h.post("/api/v1/sites", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_the_prefix_is_the_servers() -> None:
    assert transport.PARTNER_KEY_PREFIX == auth.PARTNER_PREFIX
    assert transport.auth_headers("opk_abc") == {"X-API-Key": "opk_abc"}
    assert transport.auth_headers("osk_abc") == {"Authorization": "Bearer osk_abc"}


def test_a_partner_key_lists_only_its_sites_and_a_revoked_one_is_refused(srv) -> None:
    pa, key_a = _partner(srv, "Reseller A")
    pb, key_b = _partner(srv, "Reseller B")
    a1, a2 = _site(srv, "A clinic one", pa), _site(srv, "A clinic two", pa)
    b1, house = _site(srv, "B clinic", pb), _site(srv, "House site", None)
    # what the old client sent: the server does not take a partner key as a bearer token
    r = httpx.get(f"{srv.url}/api/v1/sites", headers={"Authorization": f"Bearer {key_a}"})
    assert r.status_code == 401

    r = _cli(srv, key_a, "site", "list", "--json")
    assert r.returncode == 0, r.stderr
    sites = json.loads(r.stdout)
    assert {s["id"] for s in sites} == {a1, a2} and {s["partner_id"] for s in sites} == {pa}
    r = _cli(srv, key_b, "site", "list", "--json")
    assert r.returncode == 0 and {s["id"] for s in json.loads(r.stdout)} == {b1}
    r = _cli(srv, key_a, "site", "show", b1)  # another tenant's site: not found, no hint
    assert r.returncode == 2 and r.stdout == "" and r.stderr == "osiris: error: site not found\n"
    r = _cli(srv, srv.token, "site", "list", "--json")  # the operator token: still Bearer
    assert {a1, a2, b1, house} <= {s["id"] for s in json.loads(r.stdout)}

    with srv.admin() as h:  # rotating revokes the old key
        r = h.post(f"/api/v1/partners/{pa}/keys", json={})
    assert r.status_code == 201, r.text
    new_a = r.json()["api_key"]
    r = _cli(srv, key_a, "site", "list", "--json")
    assert r.returncode == 4 and r.stdout == ""
    assert r.stderr.startswith("osiris: error: token refused (401")
    assert "the token from OSIRIS_TOKEN" in r.stderr and key_a not in r.stderr
    r = _cli(srv, new_a, "site", "list", "--json")
    assert r.returncode == 0 and {s["id"] for s in json.loads(r.stdout)} == {a1, a2}
