"""`osiris tui --local`: the appliance's own state, read from its SQLite file (read-only).

Works with Central Command down: nothing here touches the network. The one write is "run a
cycle now", a `run-request` file the agent polls (the agent never listens on a socket).
The Identity tab (key 3) shows the facts of the clinic's attestation (`osiris-agent attest`) —
appliance, site, key fingerprints, key history, chain head, cosigned checkpoint — laid out to be
read to an auditor or the MSP over the phone.

It reads a file, not the server, and has tabs and no banner, so it is not a
``widgets.polling.PollingTableScreen``; it shares the polling mechanism (``Poll``) only.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from ..fmt import age, cell, safe, status_cell
from ..local import (
    LocalState,
    envelope,
    epoch_of,
    is_stale,
    read_state,
    request_run,
    snapshot_age_s,
)
from ..widgets.footer import OsirisFooter
from ..widgets.modals import ConfirmModal, JsonModal
from ..widgets.polling import Poll
from ..widgets.table import KeyedTable


class LocalScreen(Screen):
    BINDINGS = [
        Binding("c", "run_cycle", "Run cycle now", id="local.run"),
        Binding("r", "refresh", "Refresh", id="local.refresh"),
        # One key per tab; the tab titles carry the number (the footer has no room for them).
        Binding("1", "tab('checks')", "Checks tab", show=False, id="local.tab1"),
        Binding("2", "tab('evidence')", "Evidence tab", show=False, id="local.tab2"),
        Binding("3", "tab('identity')", "Identity tab", show=False, id="local.tab3"),
    ]

    def __init__(self, state_dir: str) -> None:
        super().__init__()
        self.state_dir = state_dir
        self.state: LocalState | None = None
        self.poll = Poll(self, "local", lambda: read_state(state_dir), self.apply, self.failed)

    def compose(self) -> ComposeResult:
        label = getattr(self.app, "label", None) or self.state_dir
        yield Static(Text(f" local appliance {safe(label)}", style="bold"), id="banner")
        yield Static(Text("reading state…", style="dim"), id="summary")
        with TabbedContent(id="local-tabs"):
            with TabPane("1 Checks", id="checks"):
                yield KeyedTable(
                    [("host", "HOST"), ("check", "CHECK"), ("status", "STATUS"),
                     ("since", "SINCE"), ("observed", "OBSERVED"), ("expected", "EXPECTED")],
                    id="results",
                )  # fmt: skip
            with TabPane("2 Evidence", id="evidence"):
                yield KeyedTable(
                    [("seq", "SEQ"), ("outcome", "OUTCOME"), ("host", "HOST"),
                     ("check", "CHECK"), ("at", "CREATED"), ("receipt", "RECEIPT")],
                    id="local-evidence",
                )  # fmt: skip
            with TabPane("3 Identity", id="identity"):
                yield Static(Text("reading state…", style="dim"), id="local-identity")
        yield OsirisFooter()

    def on_mount(self) -> None:
        self.query_one("#results").focus()
        self.load()
        self.set_interval(self.app.poll_s, self.load)  # type: ignore[attr-defined]
        self.set_interval(1.0, self.render_summary)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run_cycle" and self.app.read_only:  # type: ignore[attr-defined]
            return None
        return True

    def load(self) -> None:
        self.poll.run()

    def failed(self, e: Exception) -> None:
        self.show_error(str(e))  # no banner here: the summary line says what is wrong

    def show_error(self, msg: str) -> None:
        self.query_one("#summary", Static).update(
            Text(f"cannot read state: {safe(msg)}", "bold red")
        )

    def apply(self, st: LocalState) -> None:
        st.read_at = self.app.clock()  # type: ignore[attr-defined]
        self.state = st
        self.render_summary()
        self.render_identity(st)
        self.query_one("#results", KeyedTable).sync(
            {
                f"{r.host_id}\0{r.check}": [
                    cell(r.host_id),
                    cell(r.check),
                    status_cell(r.status),
                    cell(r.since),
                    cell(_short(r.observed)),
                    cell(_short(r.expected)),
                ]
                for r in st.results
            }
        )
        newest_first(
            self.query_one("#local-evidence", KeyedTable),
            {
                str(e.seq): [
                    cell(e.seq),
                    status_cell(e.outcome),
                    cell(e.host_id),
                    cell(e.check),
                    cell(e.created_at),
                    cell(f"✓ #{e.log_index}" if e.acked else "… queued"),
                ]
                for e in st.evidence  # newest first: read_state orders by seq, descending
            },
        )

    def render_summary(self) -> None:
        st = self.state
        if st is None:
            return
        now = self.app.clock()  # type: ignore[attr-defined]
        reach = {True: ("● reachable", "green"), False: ("○ unreachable", "red")}.get(
            st.server_reachable, ("? unknown", "dim")
        )
        if st.server_reachable is False and st.last_error:
            reach = (f"{reach[0]}: {' '.join(safe(st.last_error).split())[:40]}", reach[1])
        stale = st.snapshot and is_stale(st, now)
        if stale:  # never "reachable" from a snapshot the agent stopped refreshing
            reach = ("? unknown (the agent's snapshot is stale)", "yellow")
        clock = st.clock or {}
        clock_txt = (
            f"ntp {'ok' if clock.get('ntp_ok') else 'NOT ok'} {safe(clock.get('offset_ms', '?'))}ms"
            if clock
            else "clock unknown"
        )
        receipt = st.last_receipt
        self.query_one("#summary", Static).update(
            Text.assemble(
                (
                    f" appliance {safe(st.appliance_id or '?')}  site {safe(st.site_id or '?')}\n",
                    "bold",
                ),
                " server ",
                reach,
                f"  {clock_txt}\n",
                *_reached(st, now),
                f" outbox {st.outbox_depth} queued ({st.outbox_rejected} rejected)",
                f"  chain seq {st.chain_seq} head {safe((st.chain_head or '-')[:23])}\n",
                " last receipt "
                + (f"seq {receipt['seq']} log #{receipt['log_index']}" if receipt else "none"),
                f"  drift {st.drift_count}",
                ("  run requested" if st.run_requested else "", "yellow"),
                ("  DECOMMISSIONED" if st.decommissioned is not None else "", "bold red"),
                _read_age(st, now, stale),
            )
        )

    def render_identity(self, st: LocalState) -> None:
        text = Text(" Read these over the phone (osiris-agent attest signs the same facts):\n\n",
                    style="dim")  # fmt: skip
        width = max(len(label) for label, _ in st.identity())
        for label, value in st.identity():
            style = "bold red" if label == "DECOMMISSIONED" else "bold"
            text.append(f"  {label:<{width}}  ", style="dim" if style == "bold" else style)
            text.append(f"{safe(value)}\n", style=style)
        self.query_one("#local-identity", Static).update(text)

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name
        tables = self.query_one(f"#{name}", TabPane).query(KeyedTable)
        if tables:
            tables.first().focus()

    def action_refresh(self) -> None:
        self.load()

    def action_run_cycle(self) -> None:
        if not self.app.mutation_allowed():  # type: ignore[attr-defined]
            return

        def ok(yes: bool | None) -> None:
            if yes:
                try:
                    path = request_run(self.state_dir)
                except Exception as e:  # noqa: BLE001
                    self.app.record("run a cycle now", str(e), False)  # type: ignore[attr-defined]
                    return
                self.app.record("run a cycle now", f"wrote {path}")  # type: ignore[attr-defined]
                self.load()

        self.app.push_screen(
            ConfirmModal(
                "Run a cycle now?",
                [
                    ("appliance", (self.state.appliance_id if self.state else None) or "this one"),
                    ("action", "check, heal and sign evidence now"),
                ],
                "The agent picks up the request at its next poll",
            ),  # fmt: skip
            ok,
        )

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        if event.data_table.id == "local-evidence" and event.row_key.value:
            env = envelope(self.state_dir, int(event.row_key.value))
            if env is not None:
                self.app.push_screen(JsonModal(f"bundle seq {event.row_key.value}", env))


def _read_age(st: LocalState, now: float, stale: bool) -> str | tuple[str, str]:
    """How fresh the view is: the snapshot's own age on the box, else when it was read."""
    if not st.snapshot:
        return f"  read {age(now - st.read_at)} ago"
    snap = snapshot_age_s(st, now)
    if snap is None:
        return ("  snapshot time unknown", "yellow")
    if stale:
        return (f"  SNAPSHOT STALE: written {age(snap)} ago (is the agent running?)", "bold red")
    return f"  snapshot written {age(snap)} ago"


def _reached(st: LocalState, now: float) -> list[str | tuple[str, str]]:
    """``server last reached <time> (<age> ago)  now <time>``: from the agent's record of its
    last SUCCESSFUL check-in, never from the latest attempt, so with the server dead the time
    stays put and its age grows against the console's own clock."""
    when = epoch_of(st.last_checkin)
    if st.last_checkin is None:
        reached: list[str | tuple[str, str]] = [" server last reached ", ("never", "yellow")]
    elif when is None:
        reached = [f" server last reached {safe(st.last_checkin)}"]
    else:
        stale = st.server_reachable is False
        reached = [
            f" server last reached {_clock(when)} ",
            (f"({age(now - when)} ago)", "bold red" if stale else ""),
        ]
    return [*reached, f"  now {_clock(now)}\n"]


def _clock(epoch: float) -> str:
    """``2026-12-01 23:45:08Z``: date and second, UTC, one width for both times shown."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def newest_first(table: KeyedTable, rows: dict[str, list[Text]]) -> None:
    """Sync ``rows`` (in the order given: newest first) into ``table``.

    ``KeyedTable.sync`` appends a key it has not shown at the bottom, so new evidence used to
    land below seq 1 (165…1, then 166…171). When the rows already shown plus the new ones at
    the bottom would not be the wanted order, the table is rebuilt in that order (the cursor
    stays on its row); otherwise it is the cheap keyed diff."""
    shown = [str(r.key.value) for r in table.ordered_rows]
    known = set(shown)
    predicted = [k for k in shown if k in rows] + [k for k in rows if k not in known]
    if predicted != list(rows):
        cur = table.cursor_key()
        table.reset()
        table.sync(rows)
        if cur is not None:
            table.select_key(cur)
        return
    table.sync(rows)


def _short(v: Any) -> str:
    import json

    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)
