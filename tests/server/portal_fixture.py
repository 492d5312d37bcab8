"""A real server with the portal on, mailing through a real SMTP server (aiosmtpd on loopback).
Shared by the portal's server tests (both engines) and the browser test."""

from __future__ import annotations

import email
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from osiris_server.alerts import SmtpConfig
from osiris_server.portal.config import PortalConfig

if TYPE_CHECKING:
    from tests.server.conftest import Server


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001 - aiosmtpd API
        msg = email.message_from_bytes(envelope.content)
        msg["X-Rcpt"] = ",".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"

    def wait(self, n: int, timeout: float = 10.0) -> list[email.message.Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {n} mails arrived"
            time.sleep(0.05)
        return self.messages


def link_in(msg: email.message.Message) -> str:
    body = msg.get_payload(decode=True).decode()
    m = re.search(r"(https?://\S+/portal/link/[A-Za-z0-9_-]+)", body)
    assert m, body
    return m.group(1)


@pytest.fixture
def smtp_box() -> Iterator[tuple[Mailbox, SmtpConfig]]:
    box = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield box, SmtpConfig(host="127.0.0.1", port=port, starttls=False,
                              sender="portal@msp.test")  # fmt: skip
    finally:
        ctl.stop()


@dataclass
class Portal:
    server: Server
    box: Mailbox
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.url + "/portal"

    def browser(self) -> httpx.Client:
        """A client that keeps cookies and does not follow redirects (the tests look at them)."""
        c = httpx.Client(base_url=self.server.url, timeout=20, follow_redirects=False)
        self.server.clients.append(c)
        return c

    def site_with_contact(self, email_addr: str, name: str = "Clinic", **kw: Any) -> dict:
        site = self.server.site(name, **kw)
        r = self.server.admin.post(f"/api/v1/sites/{site['id']}/contacts",
                                   json={"email": email_addr, "name": "Pat"})  # fmt: skip
        assert r.status_code == 201, r.text
        site["contact"] = r.json()["contact"]
        return site

    def ask(self, c: httpx.Client, email_addr: str, **headers: str) -> httpx.Response:
        return c.post("/portal/sign-in", data={"email": email_addr}, headers=headers)

    def sign_in(self, c: httpx.Client, email_addr: str) -> httpx.Response:
        """Ask, catch the mail, confirm: the answer to the confirming POST (303 + cookie)."""
        n = len(self.box.messages)
        assert self.ask(c, email_addr).status_code == 200
        link = link_in(self.box.wait(n + 1)[n])
        path = link[len(self.server.url) :]
        assert c.get(path).status_code == 200
        return c.post(path)


@pytest.fixture
def portal(server_factory: Any, smtp_box: Any) -> Portal:
    box, smtp = smtp_box
    s = server_factory(smtp=smtp, portal=PortalConfig(url="http://127.0.0.1:9/portal"))
    # the real URL is known once the server listens
    s.app.cfg.portal = PortalConfig(url=f"{s.url}/portal")
    return Portal(s, box)
