"""Provisioning: create claim codes (with their QR code), list pending / claimed ones, and
withdraw an unused one (d, confirmed: `osiris provision rm`).

Columns are `osiris provision list`'s (``columns.PROVISIONS``) in the console's order, the id
dimmed, plus when each code was created.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from ..app import worker_error
from ..columns import PROVISION_CREATED, PROVISIONS, cols
from ..fmt import safe
from ..qr import render_half_blocks
from ..widgets.modals import ConfirmModal, FormModal
from ..widgets.polling import PollingTableScreen, back_binding, refresh_binding

SHOWN = cols(
    "provisions (console)",
    PROVISIONS["state"],
    PROVISIONS["site"],
    replace(PROVISIONS["id"], style=lambda p: "dim"),
    PROVISION_CREATED,
    PROVISIONS["expires"],
    PROVISIONS["appliance"],
)


class ProvisionScreen(PollingTableScreen):
    BINDINGS = [
        back_binding("prov"),
        Binding("c", "create", "Create code", id="prov.create"),
        Binding("d", "withdraw", "Withdraw", id="prov.withdraw"),
        refresh_binding("prov"),
    ]
    TABLE_ID = "prov-table"
    COLUMNS = SHOWN.keyed()
    POLL_GROUP = "provision"
    EMPTY_TEXT = "No claim codes yet: c creates one for a site."

    def __init__(self) -> None:
        super().__init__()
        self.site_ids: list[str] = []
        self.last_code: dict[str, Any] | None = None

    def title_text(self) -> Text:
        return Text(" Provisioning: claim codes", style="bold")

    def compose_above(self) -> Iterator[Widget]:
        yield Static("", id="code")

    def on_mount(self) -> None:
        # (Textual calls every class's on_mount, this one first: the base's is not called here)
        self.query_one("#code").display = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("create", "withdraw") and self.app.read_only:  # type: ignore[attr-defined]
            return None
        return True

    def fetch(self) -> tuple[list[Any], list[str]]:
        """The claim codes, and the site ids the create form offers."""
        return self.client.provisions(), [s.id for s in self.client.sites()]

    def key(self, record: Any) -> str:
        return record.id

    def cells(self, record: Any) -> list[Text]:
        return SHOWN.cells(record)

    def apply(self, records: tuple[list[Any], list[str]]) -> None:  # type: ignore[override]
        provs, self.site_ids = records
        super().apply(provs)

    def action_create(self) -> None:
        if not self.app.mutation_allowed() or not self.site_ids:  # type: ignore[attr-defined]
            return

        def done(v: dict[str, Any] | None) -> None:
            if v and v.get("site_id"):
                self.create(v["site_id"])

        self.app.push_screen(
            FormModal("New claim code", [("site_id", "site", "select", self.site_ids)]), done
        )

    @work(thread=True, group="mutation")
    def create(self, site_id: str) -> None:
        what = f"POST provisions site={site_id}"
        try:
            out = self.client.create_provision(site_id)
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.app.record, what, worker_error(e), False)  # type: ignore[attr-defined]
            return
        self.app.call_from_thread(self.app.record, what, f"created {out['id']}")  # type: ignore[attr-defined]
        self.app.call_from_thread(self.show_code, out)
        self.load()

    def action_withdraw(self) -> None:
        """`osiris provision rm`: withdraw the selected unused claim code, after a confirm that
        names its site and says the code stops working."""
        if not self.app.mutation_allowed():  # type: ignore[attr-defined]
            return
        key = self.table.cursor_key()
        prov = self.records.get(key) if key else None
        if prov is None:
            return
        if prov.state != "pending":
            self.notify(f"claim code {prov.id} was already used; it cannot be withdrawn",
                        severity="warning")  # fmt: skip
            return

        def go(yes: bool | None) -> None:
            if yes:
                self.withdraw(prov.id, prov.site_id)

        self.app.push_screen(
            ConfirmModal(
                f"Withdraw claim code {prov.id}?",
                [
                    ("site", prov.site_id),
                    ("code", prov.id),
                    ("expires", prov.expires_at or "-"),
                    ("action", "withdraw (delete) the claim code"),
                ],  # fmt: skip
                "Impact: the code stops working at once; an appliance not yet enrolled with it "
                "needs a new code",
            ),
            go,
        )

    @work(thread=True, group="mutation")
    def withdraw(self, provision_id: str, site_id: str) -> None:
        what = f"DELETE provisions {provision_id} site={site_id}"
        try:
            self.client.delete_provision(provision_id)
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.app.record, what, worker_error(e), False)  # type: ignore[attr-defined]
            return
        self.app.call_from_thread(self.app.record, what, f"withdrew {provision_id}")  # type: ignore[attr-defined]
        self.load()

    def show_code(self, out: dict[str, Any]) -> None:
        self.last_code = out
        box = self.query_one("#code", Static)
        box.display = True
        box.update(
            Text.assemble(
                (f" claim code {safe(out['code'])}", "bold reverse"),
                f"  site {safe(out['site_id'])}  expires {safe(out['expires_at'])}\n",
                render_half_blocks(out["code"]),
            )
        )
