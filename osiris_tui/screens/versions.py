"""Fleet versions (`:versions`, issue 16 item 6): each appliance's agent version and the state of
its newest update (requested, switched, healthy — or rolled_back, refused, failed in red).

Columns are `osiris fleet versions`'s (``updates.FLEET_VERSIONS``); the title counts the
versions, so a half-finished rollout shows as two versions at a glance. Rolling out stays a
deliberate CLI act (`osiris update rollout --site … --release …`), watched here.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..updates import FLEET_VERSIONS, fleet_versions
from ..widgets.polling import PollingTableScreen, back_binding, refresh_binding


class VersionsScreen(PollingTableScreen):
    BINDINGS = [back_binding("versions"), refresh_binding("versions")]
    TABLE_ID = "versions-table"
    COLUMNS = FLEET_VERSIONS.keyed()
    POLL_GROUP = "versions"
    EMPTY_TEXT = "No appliance enrolled yet."

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def title_text(self) -> Text:
        spread = ", ".join(f"{v} ×{n}" for v, n in sorted(self.counts.items()))
        return Text(f" Fleet versions: {spread or '-'}", style="bold")

    def fetch(self) -> dict[str, Any]:
        return fleet_versions(self.client)  # the worker's; apply (UI thread) splits it

    def apply(self, records: Any) -> None:
        self.counts = dict(records["versions"])
        super().apply(list(records["appliances"]))
        self.query_one("#title", Static).update(self.title_text())

    def key(self, record: Any) -> str:
        return str(record["appliance_id"])

    def cells(self, record: Any) -> list[Text]:
        return FLEET_VERSIONS.cells(record)

    def detail(self, record: Any) -> tuple[str, Any]:
        return f"appliance {record['appliance_id']}", record
