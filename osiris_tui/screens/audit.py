"""The audit log (admins and auditors), newest first, paged on the server.

Columns are `osiris audit list`'s (``columns.AUDIT``) plus the detail the CLI leaves to --json.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ..columns import AUDIT, AUDIT_DETAIL
from ..widgets.polling import PollingTableScreen, back_binding, refresh_binding

SHOWN = AUDIT.pick("at", "actor", "action", "target", "site").plus(AUDIT_DETAIL)


class AuditScreen(PollingTableScreen):
    BINDINGS = [back_binding("audit"), refresh_binding("audit")]
    TABLE_ID = "audit-table"
    COLUMNS = SHOWN.keyed()
    POLL_GROUP = "audit"
    EMPTY_TEXT = "The audit log is empty."

    def title_text(self) -> Text:
        return Text(" Audit log (newest first)", style="bold")

    def fetch(self) -> list[Any]:
        return self.client.audit(limit=500)

    def key(self, record: Any) -> str:
        return str(record.id)

    def cells(self, record: Any) -> list[Text]:
        return SHOWN.cells(record)

    def order(self, keys: list[str]) -> list[str]:
        return sorted(keys, key=lambda k: -int(k))

    def detail(self, record: Any) -> tuple[str, Any]:
        return f"audit #{record.id}", record.as_json()
