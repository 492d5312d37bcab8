"""Learned-rule candidates: what the server's `GET /learning/candidates` holds, read-only.

The server lists (check, runbook) pairs with their success record; it has no promotion call
yet, so this view offers none either — the title says so rather than showing a dead key.
Columns are `osiris learn list`'s (``columns.LEARNING``) without the id (enter shows it).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ..columns import LEARNING
from ..widgets.polling import PollingTableScreen, back_binding, refresh_binding

SHOWN = LEARNING.pick("site", "check", "runbook", "ok", "failed", "rate", "status", "updated")


class LearnScreen(PollingTableScreen):
    BINDINGS = [back_binding("learn"), refresh_binding("learn")]
    TABLE_ID = "learn-table"
    COLUMNS = SHOWN.keyed()
    POLL_GROUP = "learn"
    EMPTY_TEXT = "The server has no candidates yet."

    def title_text(self) -> Text:
        return Text.assemble(
            (" Learning candidates", "bold"),
            ("  read-only: the server lists them; promotion is not in its API", "dim"),
        )

    def fetch(self) -> list[Any]:
        return self.client.learning_candidates()

    def key(self, record: Any) -> str:
        return record.id

    def cells(self, record: Any) -> list[Text]:
        return SHOWN.cells(record)

    def detail(self, record: Any) -> tuple[str, Any]:
        return f"candidate {record.id}", record.as_json()
