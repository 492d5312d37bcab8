"""The Credentials tab: the site's credentials (secrets masked by the server); a adds (every
field of `osiris cred add`: kind, host, address, port, username, the password twice or an ssh
key from a file or pasted, pinned host keys, TLS for WinRM, lab), t rotates (the new secret of
the credential's kind, a password twice), d deletes, x reveals (audited). Each change names
site, host and impact first; a refusal reopens the form with what was typed."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from ...app import worker_error
from ...client import Credential
from ...columns import CREDENTIALS
from ...form_rules import CRED_KINDS, DEFAULT_PORT, credential_add, credential_rotate, shown
from ...widgets.forms import Field, FormFlow, FormScreen
from ...widgets.modals import ConfirmModal, JsonModal
from ...widgets.table import KeyedTable
from .tab import ApplianceContext, ApplianceTab

SHOWN = CREDENTIALS.pick("host", "kind", "address", "user", "secret", "version", version="VER")
PASSWORD_KINDS = ("winrm", "ssh_password")
SSH_KINDS = ("ssh_password", "ssh_key")
# Every option of `osiris cred add`, plus the TLS switches the server takes for WinRM.
ADD_FIELDS = [
    Field("kind", "kind", "select", CRED_KINDS),
    Field("host_id", "host id the agent knows it by (e.g. dc01)"),
    Field("address", "address (host name or IP)"),
    Field("port", "port (empty: 5986 for winrm, 22 for ssh)", only=CRED_KINDS[:3]),
    Field("username", "username", only=CRED_KINDS[:3]),
    Field("password", "password", "password", only=PASSWORD_KINDS),
    Field("password2", "password again", "password", only=PASSWORD_KINDS),
    Field("key_path", "private key file (path), or paste it below", only=("ssh_key",)),
    Field("private_key", "private key (pasted, hidden)", "key", only=("ssh_key",)),
    Field("fingerprints", "pinned SSH host keys (SHA256:…, space separated)", only=SSH_KINDS),
    Field("sudo", "log in as a named user, run scripts through sudo", "check", only=SSH_KINDS),
    Field(
        "become_password",
        "sudo password (empty: login password or NOPASSWD)",
        "password",
        only=SSH_KINDS,
    ),  # fmt: skip
    Field("use_tls", "use TLS (https)", "check", value=True, only=("winrm",)),
    Field("verify_tls", "verify the TLS certificate", "check", value=True, only=("winrm",)),
    Field("lab", "lab simulator host", "check"),
]
SECRET_FIELDS = ("password", "password2", "key_path", "private_key", "become_password")


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
        site_id = self.ctx.site_id
        hosts = sorted({c.host_id for c in self.creds.values()})

        def form(values: dict[str, Any], error: str | None) -> FormScreen:
            intro = [f"site {site_id}; secrets are sent to the server only, never shown"]
            return FormScreen(f"Add credential at {site_id}", ADD_FIELDS, credential_add,
                              intro, values, error)  # fmt: skip

        def confirm(body: dict[str, Any]) -> ConfirmModal:
            port = body.get("port") or f"{DEFAULT_PORT.get(body['kind'], '-')} (default)"
            lines = [
                ("site", site_id),
                ("host", body["host_id"]),
                ("action", f"add {body['kind']} credential"),
                ("address", f"{body['address']} port {port}"),
                ("username", body.get("username") or "-"),
            ]
            if body.get("sudo"):
                how = "its own sudo password" if body.get("become_password") else "login password"
                lines.append(("sudo", f"scripts run through sudo ({how})"))
            if body["kind"] == "winrm":
                tls = "https" if body.get("use_tls") else "http (no TLS)"
                verify = "verified" if body.get("verify_tls") else "NOT verified"
                lines.append(("tls", f"{tls}, certificate {verify}"))
            again = body["host_id"] in hosts
            return ConfirmModal(
                f"Add a credential for {body['host_id']}?",
                lines,
                "Impact: appliances of this site receive it at their next check-in and start "
                "checking and healing this host"
                + ("; this host already has a credential" if again else ""),
            )

        flow: FormFlow

        def send(body: dict[str, Any], values: dict[str, Any]) -> None:
            self.cred_call("add", None, body, flow, values)

        flow = FormFlow(self.app, form, confirm, send)
        flow.start()

    def action_rotate_cred(self) -> None:
        if not self.mutation_allowed():
            return
        c = self._cred()
        if c is None:
            return
        if c.kind == "local":
            self.app.notify("a local credential has no secret to rotate", severity="warning")
            return
        site_id = self.ctx.site_id
        fields = [f for f in ADD_FIELDS if f.name in SECRET_FIELDS]

        def form(values: dict[str, Any], error: str | None) -> FormScreen:
            return FormScreen(
                f"New secret for {c.host_id} ({c.kind})",
                fields,
                lambda v: credential_rotate(c.kind, v),
                [f"site {site_id} · credential {c.id} v{c.version}"],
                {"kind": c.kind, **values},
                error,
            )

        def confirm(body: dict[str, Any]) -> ConfirmModal:
            return ConfirmModal(
                f"Rotate the secret of {c.host_id}?",
                [("site", site_id), ("host", c.host_id), ("action", "rotate secret")],
                "Impact: appliances use the new secret from their next check-in; "
                "checks fail if it is wrong",
            )

        flow: FormFlow

        def send(body: dict[str, Any], values: dict[str, Any]) -> None:
            self.cred_call("rotate", c.id, body, flow, values)

        flow = FormFlow(self.app, form, confirm, send)
        flow.start()

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
    def cred_call(
        self,
        op: str,
        cred_id: str | None,
        body: dict[str, Any] | None,
        flow: FormFlow | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        what = f"{op} credential {cred_id or ''} {shown(body or {})}".strip()
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
            msg = worker_error(e)
            self.record(what, msg, False)
            if flow is not None:
                flow.refused(values or {}, msg)
            return
        self.record(what, result)
        self.ctx.load_main()
