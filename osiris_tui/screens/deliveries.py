"""Alert deliveries (`:deliveries`, issue 16 item 3): each (incident, route) delivery with its
state — pending, sending, sent, retrying (with the next attempt), dead in red — attempts and last
error, newest first; the title counts what is not yet sent, so a dead route is seen at a glance.

Columns are `osiris alerts deliveries`'s (``alert_calls``); routes themselves are edited from
the CLI (`osiris alerts add-route`: a route's secret is typed once, never shown again).
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widgets import Static

from .. import alert_calls
from ..columns import Column, cols
from ..widgets.polling import PollingTableScreen, back_binding, refresh_binding

STATE_STYLE = {"dead": "bold red", "retrying": "yellow", "sending": "cyan", "pending": "cyan",
               "sent": "green"}  # fmt: skip


def _next(d: dict[str, Any]) -> str:
    if d["state"] not in ("retrying", "pending"):
        return "-"
    wait = int(d["next_attempt_at"]) - int(time.time())
    return "now" if wait <= 0 else f"in {wait}s"


DELIVERIES = cols(
    "deliveries",
    Column("incident", "INCIDENT", lambda d: d["incident_id"]),
    Column("site", "SITE", lambda d: d["site_id"]),
    Column("route", "ROUTE", lambda d: d["route_name"]),
    Column("preset", "PRESET", lambda d: d["preset"]),
    Column("event", "EVENT", lambda d: d["event"] + (f" #{d['step']}" if d["step"] else "")),
    Column("state", "STATE", lambda d: d["state"], style=lambda d: STATE_STYLE.get(d["state"], "")),
    Column("tries", "TRIES", lambda d: str(d["attempts"])),
    Column("next", "NEXT", _next),
    Column("error", "LAST ERROR", lambda d: d.get("last_error") or "", style=lambda d: "dim"),
)


class DeliveriesScreen(PollingTableScreen):
    BINDINGS = [back_binding("deliveries"), refresh_binding("deliveries")]
    TABLE_ID = "deliveries-table"
    COLUMNS = DELIVERIES.keyed()
    POLL_GROUP = "deliveries"
    EMPTY_TEXT = "No alert delivered through a route yet."

    def __init__(self) -> None:
        super().__init__()
        self.unsent = 0
        self.dead = 0

    def title_text(self) -> Text:
        return Text(f" Alert deliveries: {self.unsent} not sent yet, {self.dead} dead",
                    style="bold red" if self.dead else "bold")  # fmt: skip

    def fetch(self) -> list[dict[str, Any]]:
        return alert_calls.deliveries(self.client, limit=500)

    def apply(self, records: Any) -> None:
        rows = list(records)
        self.unsent = sum(r["state"] in ("pending", "sending", "retrying") for r in rows)
        self.dead = sum(r["state"] == "dead" for r in rows)
        super().apply(rows)
        self.query_one("#title", Static).update(self.title_text())

    def key(self, record: Any) -> str:
        return str(record["id"])

    def cells(self, record: Any) -> list[Text]:
        return DELIVERIES.cells(record)

    def detail(self, record: Any) -> tuple[str, Any]:
        return f"delivery {record['id']}", record
