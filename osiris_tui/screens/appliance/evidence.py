"""The Evidence tab: the newest bundles of this appliance's chain; v verifies the chain offline
(pulled from the server), V verifies an export folder. Enter shows a bundle's envelope.

It polls on its own (its own worker group): the first poll fetches the chain's tail, later
ones only what is newer, so a long chain is not refetched every few seconds. After each poll it
posts :class:`EvidenceTab.Changed`: the Drift tab is computed from this window.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import ProgressBar, Static

from ...app import worker_error
from ...columns import EVIDENCE, cols
from ...fmt import safe
from ...widgets.modals import JsonModal, PromptModal
from ...widgets.polling import Poll
from ...widgets.table import KeyedTable
from .tab import ApplianceContext, ApplianceTab

EVIDENCE_WINDOW = 2000  # newest bundles kept per appliance; older ones are one `pull` away


def _clip(text: str, width: int) -> str:
    """DataTable columns grow to their widest cell; long lists must not push the rest away."""
    return text if len(text) <= width else text[: width - 1] + "…"


_CONTROLS = EVIDENCE["controls"]
SHOWN = cols(
    "evidence (console)",
    *(c for c in EVIDENCE if c.key != "controls"),
    replace(_CONTROLS, get=lambda r: _clip(_CONTROLS.get(r), _CONTROLS.width or 32)),
)


class EvidenceTab(ApplianceTab):
    TITLE = "Evidence"
    TAB_ID = "evidence"
    BINDINGS = [
        Binding("v", "verify", "Verify chain", id="detail.verify"),
        Binding("V", "verify_folder", "Verify folder", id="detail.verify_folder"),
    ]

    class Changed(Message):
        """The chain window changed (the screen re-renders the Drift tab from it)."""

    def __init__(self, ctx: ApplianceContext) -> None:
        super().__init__(ctx)
        self.evidence: list[dict[str, Any]] = []
        self.window_start = 1
        self.verdict: str | None = None
        self.poll = Poll(self, "detail-evidence", self.fetch_window, self.apply_window,
                         name="load_evidence")  # fmt: skip

    def compose(self) -> ComposeResult:
        yield Static("", id="verify-result")
        yield ProgressBar(id="verify-progress", show_eta=False)
        yield KeyedTable(SHOWN.keyed(), id="ev-table")

    def on_mount(self) -> None:
        self.query_one("#verify-progress").display = False

    # ---- loading

    def load(self) -> None:
        self.poll.run()

    def fetch_window(self) -> tuple[list[dict[str, Any]], int]:
        """The chain's newest bundles: the whole tail once, then only what is new (by seq)."""
        from ...drift import fetch_after, fetch_chain_tail

        client, ctx, have = self.ctx.client, self.ctx, self.evidence
        if have:
            new = fetch_after(client, ctx.site_id, ctx.appliance.id, have[-1]["seq"])
            rows, start = (have + new)[-EVIDENCE_WINDOW:], self.window_start
            if len(have) + len(new) > EVIDENCE_WINDOW:
                start = int(rows[0]["seq"])
            return rows, start
        head = (ctx.appliance.status or {}).get("seq")
        return fetch_chain_tail(client, ctx.site_id, ctx.appliance.id, head, EVIDENCE_WINDOW)

    def apply_window(self, window: tuple[list[dict[str, Any]], int]) -> None:
        self.evidence, self.window_start = window
        self.query_one("#ev-table", KeyedTable).sync(
            {r["bundle_hash"]: SHOWN.cells(r) for r in self.evidence}
        )
        self.post_message(self.Changed())

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        key = event.row_key.value
        row = next((r for r in self.evidence if r["bundle_hash"] == key), None)
        if row is not None:
            self.app.push_screen(JsonModal(f"bundle {key}", row.get("envelope")))

    # ---- verifying

    def action_verify(self) -> None:
        self.run_verify(None)

    def action_verify_folder(self) -> None:
        def got(path: str | None) -> None:
            if path:
                self.run_verify(Path(path).expanduser())

        self.app.push_screen(PromptModal("Verify an export folder", "path/to/export"), got)

    @work(thread=True, exclusive=True, group="verify")
    def run_verify(self, folder: Path | None) -> None:
        """Pull this appliance's chain (or use a folder) and run the offline verifier."""
        from osiris_core.trust import TrustFileError, store_roots
        from osiris_core.verify import UnusableInput, verify_export

        from ...pull import pull_export

        bar = self.query_one("#verify-progress", ProgressBar)
        self.app.call_from_thread(self._verify_start)
        tmp = None
        try:
            if folder is None:
                tmp = tempfile.TemporaryDirectory(prefix="osiris-verify-")
                folder = Path(tmp.name) / "export"

                def pulled(i: int, n: int) -> None:
                    self.app.call_from_thread(bar.update, total=2 * n, progress=i)

                pull_export(
                    self.ctx.client, self.ctx.site_id, folder, appliance_id=self.ctx.appliance.id,
                    progress=pulled,
                )  # fmt: skip
            total = max(1, sum(1 for _ in open(folder / "bundles.jsonl", "rb")))
            self.app.call_from_thread(bar.update, total=total, progress=0)

            def prog(n: int) -> None:
                self.app.call_from_thread(bar.update, progress=n)

            # the operator's own trust store (osiris trust), if any: keys only the export
            # carries are reported W_UNPINNED, exactly as `osiris evidence verify` does
            roots = store_roots()
            report = verify_export(
                folder, trust=None if roots.empty else roots, progress=prog, workers=1
            )
        except (UnusableInput, TrustFileError, OSError) as e:
            self.app.call_from_thread(self._verify_done, None, str(e))
            return
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self._verify_done, None, worker_error(e))
            return
        finally:
            if tmp is not None:
                tmp.cleanup()
        self.app.call_from_thread(self._verify_done, report, None)

    def _verify_start(self) -> None:
        self.query_one("#verify-progress").display = True
        self.query_one("#verify-result", Static).update(Text("verifying…", style="dim"))

    def _verify_done(self, report: Any, error: str | None) -> None:
        self.query_one("#verify-progress").display = False
        res = self.query_one("#verify-result", Static)
        if report is None:
            self.verdict = "ERROR"
            res.update(Text(f"cannot verify: {safe(error)}", style="bold red"))
            return
        self.verdict = "PASS" if report.ok() else "FAIL"
        lines = [Text(safe(report.summary()), style="bold green" if report.ok() else "bold red")]
        for line in report.lines():
            level = line.split(" ", 1)[0]
            style = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red"}.get(level, "")
            lines.append(Text(safe(line), style=style))
        res.update(Text("\n").join(lines[:12]))
