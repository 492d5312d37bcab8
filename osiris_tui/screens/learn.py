"""The Learning view: the server's learned patterns (``GET /learning/candidates``), each with
its L2 record across sites as ``k/n``, and on enter the evidence bundles behind it.

Why the detail is fetched with the listing: enter must show what the admin decides on — the
rule the pattern becomes, the thresholds, every bundle (site, appliance, outcome, hash) — and
the modal opens on the UI thread, where no request may run. The listing is small (candidates and
promoted rules, not the patterns still being observed), so each poll asks for at most
``DETAILS`` of them in the worker. Deciding stays with the CLI (`osiris learning approve|reject`,
admin only), which asks for confirmation and a reason.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ..columns import LEARNING
from ..widgets.polling import PollingTableScreen, back_binding, refresh_binding

SHOWN = LEARNING.pick("check", "runbook", "healed", "sites", "after", "status", "updated")
DETAILS = 50


class LearnScreen(PollingTableScreen):
    BINDINGS = [back_binding("learn"), refresh_binding("learn")]
    TABLE_ID = "learn-table"
    COLUMNS = SHOWN.keyed()
    POLL_GROUP = "learn"
    EMPTY_TEXT = "The server has no candidates yet."

    def title_text(self) -> Text:
        return Text.assemble(
            (" Learning", "bold"),
            ("  L2 healed k/n across sites · enter: the evidence · "
             "decide with osiris learning approve|reject", "dim"),
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
