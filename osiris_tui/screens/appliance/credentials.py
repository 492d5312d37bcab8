"""The Credentials tab: the site's credentials (secrets masked by the server); a adds, t
rotates, d deletes, x reveals (audited). Each change names site, host and impact first."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from ...app import worker_error
from ...client import Credential
from ...columns import CREDENTIALS
from ...widgets.modals import ConfirmModal, FormModal, JsonModal, PromptModal
from ...widgets.table import KeyedTable
from .tab import ApplianceContext, ApplianceTab

SHOWN = CREDENTIALS.pick("host", "kind", "address", "user", "secret", "version", version="VER")


class CredentialsTab(ApplianceTab):
    TITLE = "Credentials"
    TAB_ID = "credentials"
    POLLED = True
    BINDINGS = [
        Binding("a", "add_cred", "Add cred", id="detail.add_cred"),
        Binding("t", "rotate_cred", "Rotate", id="detail.rotate"),
        Binding("d", "delete_cred", "Delete", id="detail.delete"),
        Binding("x", "reveal_cred", "Reveal", id="detail.reveal"),
    ]
    MUTATIONS = frozenset({"add_cred", "rotate_cred", "delete_cred", "reveal_cred"})

    def __init__(self, ctx: ApplianceContext) -> None:
        super().__init__(ctx)
        self.creds: dict[str, Credential] = {}

    def compose(self) -> ComposeResult:
        yield KeyedTable(SHOWN.keyed(), id="cred-table")

    def fetch(self, client: Any) -> list[Credential]:
        return client.credentials(self.ctx.site_id)

    def show(self, data: list[Credential]) -> None:
        self.creds = {c.id: c for c in data}
        self.query_one("#cred-table", KeyedTable).sync({c.id: SHOWN.cells(c) for c in data})

    def _cred(self) -> Credential | None:
        key = self.query_one("#cred-table", KeyedTable).cursor_key()
        return self.creds.get(key) if key else None

    def action_add_cred(self) -> None:
        if not self.mutation_allowed():
            return
        fields = [
            ("host_id", "host id (e.g. dc01)", "text", None),
            ("kind", "kind", "select", ["winrm", "ssh_password", "local"]),
            ("address", "address", "text", None),
            ("username", "username", "text", None),
            ("password", "password", "password", None),
        ]

        def done(v: dict[str, Any] | None) -> None:
            if v:
                body = {k: x for k, x in v.items() if x not in (None, "")}
                if body.get("kind") == "local":
                    body.pop("password", None)
                self.cred_call("add", None, body)

        self.app.push_screen(FormModal(f"Add credential at {self.ctx.site_id}", fields), done)

    def action_rotate_cred(self) -> None:
        if not self.mutation_allowed():
            return
        c = self._cred()
        if c is None:
            return
        site_id = self.ctx.site_id

        def got(pw: str | None) -> None:
            if not pw:
                return

            def ok(yes: bool | None) -> None:
                if yes:
                    self.cred_call("rotate", c.id, {"password": pw})

            self.app.push_screen(
                ConfirmModal(
                    f"Rotate the secret of {c.host_id}?",
                    [("site", site_id), ("host", c.host_id), ("action", "rotate secret")],
                    "Impact: appliances use the new secret from their next check-in; "
                    "checks fail if it is wrong",
                ),
                ok,
            )

        self.app.push_screen(PromptModal(f"New password for {c.host_id}", password=True), got)

    def _confirm_cred(self, verb: str, title: str, action: str, impact: str) -> None:
        """Confirm a credential action naming site, host and impact, then send it."""
        if not self.mutation_allowed():
            return
        c = self._cred()
        if c is None:
            return

        def ok(yes: bool | None) -> None:
            if yes:
                self.cred_call(verb, c.id, None)

        self.app.push_screen(
            ConfirmModal(
                title.format(host=c.host_id),
                [("site", self.ctx.site_id), ("host", c.host_id), ("action", action)],
                impact,
            ),
            ok,
        )

    def action_delete_cred(self) -> None:
        self._confirm_cred(
            "delete",
            "Delete credential for {host}?",
            "delete credential",
            "Impact: this host is no longer checked, healed or evidenced",
        )

    def action_reveal_cred(self) -> None:
        self._confirm_cred(
            "reveal",
            "Reveal the secret of {host}?",
            "reveal (admin)",
            "The server records this reveal in the audit log",
        )

    @work(thread=True, group="mutation")
    def cred_call(self, op: str, cred_id: str | None, body: dict[str, Any] | None) -> None:
        shown = {k: ("********" if k in ("password", "private_key") else v)
                 for k, v in (body or {}).items()}  # fmt: skip
        what = f"{op} credential {cred_id or ''} {shown}".strip()
        client, site_id = self.ctx.client, self.ctx.site_id
        try:
            if op == "add":
                res: Any = client.add_credential(site_id, body or {})
                result = f"created {res.id} v{res.version}"
            elif op == "rotate":
                res = client.update_credential(site_id, cred_id or "", body or {})
                result = f"rotated {res.id} now v{res.version}"
            elif op == "delete":
                client.delete_credential(site_id, cred_id or "")
                result = f"deleted {cred_id}"
            else:
                secret = client.reveal_credential(site_id, cred_id or "")
                self.app.call_from_thread(
                    self.app.push_screen, JsonModal(f"Secret of {cred_id} (audited)", secret)
                )
                result = f"revealed {cred_id} (audited)"
        except Exception as e:  # noqa: BLE001
            self.record(what, worker_error(e), False)
            return
        self.record(what, result)
        self.ctx.load_main()
