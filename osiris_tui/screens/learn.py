"""The Learning view: the server's learned patterns (``GET /learning/candidates``), each with
its L2 record across sites as ``k/n``, and on enter the evidence bundles behind it.

Why the detail is fetched with the listing: enter must show what the admin decides on — the
rule the pattern becomes, the thresholds, every bundle (site, appliance, outcome, hash) — and
the modal opens on the UI thread, where no request may run. The listing is small (candidates and
promoted rules, not the patterns still being observed), so each poll asks for at most
``DETAILS`` of them in the worker.

Deciding: ``a`` approves the candidate under the cursor, ``x`` rejects it (``learn_decide``: a
form, a confirm naming pattern, runbook, params, canary and soak, then the request — the same
API calls as `osiris learning approve|reject`, admin only). The keys are enabled only where the
server says the decision is open (``approvable`` for approve; a candidate or a pattern still
observed for reject) and never with ``--read-only``; a disabled key is shown dimmed, not hidden,
so the admin sees the decision exists and that this row does not offer it.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

from ..columns import LEARNING
from ..widgets.polling import PollingTableScreen, back_binding, refresh_binding
from .learn_decide import approve_flow, reject_flow

SHOWN = LEARNING.pick("check", "runbook", "healed", "sites", "after", "status", "updated")
DETAILS = 50
REJECTABLE = ("observing", "candidate")  # what POST …/reject takes (osiris_server/api/learning.py)


class LearnScreen(PollingTableScreen):
    BINDINGS = [
        back_binding("learn"),
        Binding("a", "approve", "Approve", id="learn.approve"),
        Binding("x", "reject", "Reject", id="learn.reject"),
        refresh_binding("learn"),
    ]
    TABLE_ID = "learn-table"
    COLUMNS = SHOWN.keyed()
    POLL_GROUP = "learn"
    EMPTY_TEXT = "The server has no candidates yet."

    def title_text(self) -> Text:
        return Text.assemble(
            (" Learning", "bold"),
            ("  L2 healed k/n across sites · enter: the evidence · "
             "a approve · x reject (admin)", "dim"),
        )  # fmt: skip

    def fetch(self) -> list[Any]:
        records = self.client.learning_candidates()
        for r in records[:DETAILS]:
            full = self.client.learning_candidate(r.id)
            r.raw = {**r.raw, "evidence": full.get("evidence", []), "rule": full.get("rule")}
        return records

    def key(self, record: Any) -> str:
        return record.id

    def cells(self, record: Any) -> list[Text]:
        return SHOWN.cells(record)

    def detail(self, record: Any) -> tuple[str, Any]:
        doc = {**record.as_json(), "rule": record.raw.get("rule"),
               "evidence": record.raw.get("evidence", [])}  # fmt: skip
        return f"candidate {record.id}", doc

    # ---- deciding

    def current(self) -> Any:
        key = self.table.cursor_key()
        return self.records.get(key) if key else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in ("approve", "reject"):
            return True
        cand = self.current()
        if self.app.read_only or cand is None:  # type: ignore[attr-defined]
            return None
        open_ = cand.approvable if action == "approve" else cand.status in REJECTABLE
        return True if open_ else None

    def apply(self, records: list[Any]) -> None:
        super().apply(records)
        self.refresh_bindings()

    def on_data_table_row_highlighted(self, event: Any) -> None:
        self.refresh_bindings()

    def action_approve(self) -> None:
        cand = self.current()
        if cand is not None and cand.approvable and self.app.mutation_allowed():  # type: ignore[attr-defined]
            approve_flow(self.app, cand, self.load).start()

    def action_reject(self) -> None:
        cand = self.current()
        if cand is not None and cand.status in REJECTABLE and self.app.mutation_allowed():  # type: ignore[attr-defined]
            reject_flow(self.app, cand, self.load).start()
