"""Appliance detail: Drift, Runbooks, Credentials, Evidence, Incidents, Orders tabs.

Every mutation goes through a confirm modal when it reduces protection, runs in a worker, and
lands in the activity log with what was sent and what came back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static, TabbedContent, TabPane

from ..app import Banner, CommandBar, from_worker, worker_error
from ..client import Appliance, Credential, Site
from ..fmt import age, cell, safe, status_cell
from ..widgets.modals import ConfirmModal, FormModal, JsonModal, PromptModal
from ..widgets.table import KeyedTable

TABS = ["drift", "runbooks", "credentials", "evidence", "incidents", "orders"]
MUTATIONS = {
    "toggle_appliance",
    "toggle_site",
    "add_cred",
    "rotate_cred",
    "delete_cred",
    "reveal_cred",
    "new_order",
    "confirm_appliance",
}


EVIDENCE_WINDOW = 2000  # newest bundles kept per appliance; older ones are one `pull` away


def _ago(now: float, when: str | None) -> str:
    """Age of an RFC 3339 time ("3m"); the raw text if an old agent sent something odd."""
    if not when:
        return ""
    try:
        from osiris_core.canonical import parse_time

        return age(now - parse_time(when).timestamp())
    except Exception:  # noqa: BLE001 - decoration; never a crash
        return safe(when)


def _clip(text: str, width: int) -> str:
    """DataTable columns grow to their widest cell; long lists must not push the rest away."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _catalog() -> dict[str, Any]:
    try:
        from osiris_core.catalog import load_catalog

        return dict(load_catalog().runbooks)
    except Exception:  # noqa: BLE001 - names and flags are decoration; the server decides
        return {}


class ApplianceScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("r", "refresh", "Refresh", id="detail.refresh"),
        Binding("space", "toggle_appliance", "Toggle (appliance)", id="detail.toggle"),
        Binding("s", "toggle_site", "Toggle (site)", id="detail.toggle_site"),
        Binding("a", "add_cred", "Add cred", id="detail.add_cred"),
        Binding("t", "rotate_cred", "Rotate", id="detail.rotate"),
        Binding("d", "delete_cred", "Delete", id="detail.delete"),
        Binding("x", "reveal_cred", "Reveal", id="detail.reveal"),
        Binding("v", "verify", "Verify chain", id="detail.verify"),
        Binding("V", "verify_folder", "Verify folder", id="detail.verify_folder"),
        Binding("n", "new_order", "New order", id="detail.new_order"),
        Binding("C", "confirm_appliance", "Confirm (admin)", id="detail.confirm"),
        Binding("1,2,3,4,5,6", "tab_number", show=False, id="detail.tabs"),
    ]
    TAB_ACTIONS = {
        "toggle_appliance": "runbooks",
        "toggle_site": "runbooks",
        "add_cred": "credentials",
        "rotate_cred": "credentials",
        "delete_cred": "credentials",
        "reveal_cred": "credentials",
        "verify": "evidence",
        "verify_folder": "evidence",
        "new_order": "orders",
    }

    def __init__(self, appliance: Appliance, site: Site | None) -> None:
        super().__init__()
        self.appliance = appliance
        self.site = site
        self.site_id = appliance.site_id
        self.catalog = _catalog()
        self.runbooks: dict[str, Any] = {}
        self.creds: dict[str, Credential] = {}
        self.evidence: list[dict[str, Any]] = []
        self.window_start = 1
        self.drift: dict[str, Any] = {}
        self.orders: dict[str, Any] = {}
        self.verdict: str | None = None

    @property
    def client(self) -> Any:
        return self.app.client  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Static(self.title_text(), id="title")
        with TabbedContent(id="tabs", initial="drift"):
            with TabPane("Drift", id="drift"):
                yield KeyedTable(
                    [("host", "HOST"), ("check", "CHECK"), ("status", "STATUS"),
                     ("since", "SINCE"), ("heal", "HEALING"), ("observed", "OBSERVED")],
                    id="drift-table",
                )  # fmt: skip
            with TabPane("Runbooks", id="runbooks"):
                yield KeyedTable(
                    [("id", "RUNBOOK"), ("state", "STATE"), ("by", "SET BY"),
                     ("flags", "FLAGS"), ("name", "NAME")],
                    id="rb-table",
                )  # fmt: skip
            with TabPane("Credentials", id="credentials"):
                yield KeyedTable(
                    [("host", "HOST"), ("kind", "KIND"), ("address", "ADDRESS"),
                     ("user", "USER"), ("secret", "SECRET"), ("version", "VER")],
                    id="cred-table",
                )  # fmt: skip
            with TabPane("Evidence", id="evidence"):
                yield Static("", id="verify-result")
                yield ProgressBar(id="verify-progress", show_eta=False)
                yield KeyedTable(
                    [("seq", "SEQ"), ("outcome", "OUTCOME"), ("tier", "TIER"),
                     ("check", "CHECK"), ("host", "HOST"), ("runbook", "RUNBOOK"),
                     ("controls", "CONTROLS")],
                    id="ev-table",
                )  # fmt: skip
            with TabPane("Incidents", id="incidents"):
                yield KeyedTable(
                    [("sev", "SEVERITY"), ("status", "STATUS"), ("host", "HOST"),
                     ("kind", "KIND"), ("count", "N"), ("summary", "SUMMARY")],
                    id="inc-table",
                )  # fmt: skip
            with TabPane("Orders", id="orders"):
                yield KeyedTable(
                    [("status", "STATUS"), ("runbook", "RUNBOOK"), ("host", "HOST"),
                     ("created", "CREATED"), ("outcome", "RESULT"), ("bundle", "EVIDENCE")],
                    id="order-table",
                )  # fmt: skip
        yield CommandBar(placeholder=":command (drift, rb, cred, ev, inc, orders, sites)")
        yield Footer()

    def title_text(self) -> Text:
        a = self.appliance
        site = self.site.name if self.site else a.site_id
        st = a.state(self.app.clock())  # type: ignore[attr-defined]
        parts = [
            (" ", ""),
            status_cell(st),
            ("  appliance ", "dim"),
            (safe(a.hostname), "bold"),
            (f" ({safe(a.id)})", "dim"),
            ("  site ", "dim"),
            (safe(site), "bold"),
        ]
        if a.is_quarantined:
            parts.append(("  ⚠ QUARANTINED: no credentials until an admin confirms (C)",
                          "bold yellow"))  # fmt: skip
        return Text.assemble(*parts)

    def on_mount(self) -> None:
        self.query_one(CommandBar).display = False
        self.query_one("#verify-progress").display = False
        self.query_one("#drift-table").focus()
        self.refresh_all()
        self.set_interval(self.app.poll_s, self.refresh_all)  # type: ignore[attr-defined]

    # ---- key availability: tab-specific keys only on their tab; mutations off when read-only

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tab = self.TAB_ACTIONS.get(action)
        if tab is not None and self.query_one(TabbedContent).active != tab:
            return False
        if action == "confirm_appliance" and not self.appliance.is_quarantined:
            return False
        if action in MUTATIONS and self.app.read_only:  # type: ignore[attr-defined]
            return None  # shown dimmed
        return True

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        pane = event.pane
        if pane is not None:
            tables = pane.query(KeyedTable)
            if tables:
                tables.first().focus()

    def show_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def action_tab_number(self) -> None:
        pass

    def on_key(self, event: Any) -> None:
        if event.key in "123456" and len(event.key) == 1:
            self.show_tab(TABS[int(event.key) - 1])
            event.stop()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.refresh_all()

    # ---- loading

    def refresh_all(self) -> None:
        self.load_main()
        self.load_evidence()

    @work(thread=True, exclusive=True, group="detail-main")
    def load_main(self) -> None:
        c = self.client
        try:
            appliance = c.appliance(self.appliance.id)
            runbooks = c.appliance_runbooks(self.appliance.id)
            creds = c.credentials(self.site_id)
            incidents = [i for i in c.incidents(site_id=self.site_id, limit=500)]
            orders = c.orders(self.appliance.id, 100)
        except Exception as e:  # noqa: BLE001 - a banner, not a crash
            from_worker(self.app, self.app.api_result, False, worker_error(e))
            return
        from_worker(self.app, self.apply_main, appliance, runbooks, creds, incidents, orders)

    @work(thread=True, exclusive=True, group="detail-evidence")
    def load_evidence(self) -> None:
        """The chain's newest bundles: the whole tail once, then only what is new (by seq)."""
        from ..drift import fetch_after, fetch_chain_tail

        have = self.evidence
        try:
            if have:
                new = fetch_after(self.client, self.site_id, self.appliance.id, have[-1]["seq"])
                rows, start = (have + new)[-EVIDENCE_WINDOW:], self.window_start
                if len(have) + len(new) > EVIDENCE_WINDOW:
                    start = int(rows[0]["seq"])
            else:
                head = (self.appliance.status or {}).get("seq")
                rows, start = fetch_chain_tail(
                    self.client, self.site_id, self.appliance.id, head, EVIDENCE_WINDOW
                )
        except Exception as e:  # noqa: BLE001
            from_worker(self.app, self.app.api_result, False, worker_error(e))
            return
        from_worker(self.app, self.apply_evidence, rows, start)

    def apply_main(self, appliance, runbooks, creds, incidents, orders) -> None:  # noqa: ANN001
        self.app.api_result(True)  # type: ignore[attr-defined]
        self.appliance = appliance
        self.query_one("#title", Static).update(self.title_text())
        self.refresh_bindings()  # the confirm key exists only while quarantined
        self.render_drift()
        self.runbooks = {r.id: r for r in runbooks}
        rb_rows = {}
        for r in runbooks:
            rb = self.catalog.get(r.id)
            flags = []
            if rb is not None:
                if rb.disruptive:
                    flags.append("disruptive")
                if rb.requires_maintenance_window:
                    flags.append("window")
                flags.append(rb.severity)
            by = (
                "appliance"
                if r.appliance is not None
                else "site"
                if r.site is not None
                else "default"
            )
            rb_rows[r.id] = [
                cell(r.id),
                status_cell("on" if r.enabled else "off"),
                cell(by, "dim" if by == "default" else "bold"),
                cell(" ".join(flags), "yellow" if "disruptive" in flags else ""),
                cell(getattr(rb, "name", "")),
            ]
        self.query_one("#rb-table", KeyedTable).sync(rb_rows)
        self.creds = {c.id: c for c in creds}
        self.query_one("#cred-table", KeyedTable).sync(
            {
                c.id: [
                    cell(c.host_id),
                    cell(c.kind),
                    cell(f"{c.address}:{c.port}"),
                    cell(c.username),
                    cell(c.secret, "dim"),
                    cell(c.version),
                ]
                for c in creds
            }
        )
        mine = [i for i in incidents if i.appliance_id in (None, self.appliance.id)]
        self.query_one("#inc-table", KeyedTable).sync(
            {
                i.id: [
                    cell(i.severity, "red" if i.severity == "critical" else ""),
                    status_cell(i.status),
                    cell(i.host_id),
                    cell(i.kind),
                    cell(i.count),
                    cell(i.summary),
                ]
                for i in mine
            }
        )
        self.orders = {o.id: o for o in orders}
        self.query_one("#order-table", KeyedTable).sync(
            {
                o.id: [
                    status_cell(o.status),
                    cell((o.params or {}).get("runbook_id", o.kind)),
                    cell((o.params or {}).get("host_id", "")),
                    cell(o.created_at),
                    cell(o.result_outcome or ""),
                    cell((o.result_bundle_hash or "")[:19]),
                ]
                for o in orders
            }
        )

    def apply_evidence(self, rows: list[dict[str, Any]], start: int = 1) -> None:
        self.evidence = rows
        self.window_start = start
        out = {}
        for r in rows:
            b = r.get("envelope", {}).get("bundle", {})
            out[r["bundle_hash"]] = [
                cell(r.get("seq")),
                status_cell(str(b.get("outcome", r.get("outcome", "")))),
                cell(b.get("tier", "")),
                cell(b.get("check", r.get("check", ""))),
                cell(b.get("host_id", r.get("host_id", ""))),
                cell(b.get("runbook_id") or "-"),
                cell(_clip(",".join(b.get("controls", []) or []), 32)),
            ]
        self.query_one("#ev-table", KeyedTable).sync(out)
        self.render_drift()

    def render_drift(self) -> None:
        """Per (host, check) from the evidence chain (see drift.py); the last check-in fills in
        pairs no bundle names yet."""
        from ..drift import HEALING_TIERS, drift_rows, observed_text

        now = self.app.clock()  # type: ignore[attr-defined]
        self.drift = {
            f"{d.host_id}\0{d.check}": d
            for d in drift_rows(
                self.evidence, self.appliance.checks, window_start_seq=self.window_start
            )
        }
        rows = {}
        for key, d in self.drift.items():
            since = _ago(now, d.since)
            if since and not d.since_exact:
                since = "≥" + since
            if d.state == "compliant" and d.resolved_by in HEALING_TIERS:
                heal = f"{d.resolved_by} healed after {d.attempts}"
            elif d.state == "compliant" and d.resolved_at:
                heal = f"cleared, {d.attempts} tries"
            elif d.drift_since is not None and d.state != "compliant":
                heal = f"{d.attempts} in {_ago(now, d.drift_since) or '?'}"
            else:
                heal = "-"
            obs = "-" if d.source == "checkin" else observed_text(d)
            rows[key] = [
                cell(d.host_id),
                cell(d.check),
                status_cell(d.state),
                cell(since or "-"),
                cell(heal, "yellow" if d.state != "compliant" and d.attempts else ""),
                cell(obs, "dim" if d.state == "compliant" else ""),
            ]
        self.query_one("#drift-table", KeyedTable).sync(rows)

    # ---- runbooks

    def _selected(self, table_id: str) -> str | None:
        return self.query_one(table_id, KeyedTable).cursor_key()

    def action_toggle_appliance(self) -> None:
        self._toggle("appliance")

    def action_toggle_site(self) -> None:
        self._toggle("site")

    def _toggle(self, scope: str) -> None:
        if not self.app.mutation_allowed():  # type: ignore[attr-defined]
            return
        rb_id = self._selected("#rb-table")
        if rb_id is None or rb_id not in self.runbooks:
            return
        state = self.runbooks[rb_id]
        new = not state.enabled
        target = self.appliance.id if scope == "appliance" else self.site_id

        def go(ok: bool | None) -> None:
            if ok:
                self.set_runbook(scope, target, rb_id, new)

        if new:
            go(True)
            return
        rb = self.catalog.get(rb_id)
        self.app.push_screen(
            ConfirmModal(
                f"Disable runbook {rb_id}?",
                [
                    ("site", self.site.name if self.site else self.site_id),
                    ("appliance", self.appliance.hostname if scope == "appliance" else "all"),
                    ("action", f"disable {rb_id} at {scope} scope"),
                    ("runbook", getattr(rb, "name", rb_id)),
                ],
                "Impact: drift this runbook heals will be reported but no longer fixed"
                + (f"; controls {', '.join(rb.controls)} lose automatic remediation" if rb else ""),
            ),
            go,
        )

    @work(thread=True, group="mutation")
    def set_runbook(self, scope: str, target: str, rb_id: str, value: bool) -> None:
        what = f"PUT runbooks {scope}={target} {{{rb_id}: {str(value).lower()}}}"
        try:
            if scope == "site":
                self.client.set_site_runbooks(target, {rb_id: value})
            else:
                self.client.set_appliance_runbooks(target, {rb_id: value})
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.app.record, what, worker_error(e), False)
            return
        self.app.call_from_thread(self.app.record, what, f"{rb_id} {'on' if value else 'off'}")
        self.load_main()

    # ---- credentials

    def action_add_cred(self) -> None:
        if not self.app.mutation_allowed():  # type: ignore[attr-defined]
            return
        fields = [
            ("host_id", "host id (e.g. dc01)", "text", None),
            ("kind", "kind", "select", ["winrm", "ssh_password", "local"]),
            ("address", "address", "text", None),
            ("username", "username", "text", None),
            ("password", "password", "password", None),
        ]

        def done(v: dict[str, Any] | None) -> None:
            if v:
                body = {k: x for k, x in v.items() if x not in (None, "")}
                if body.get("kind") == "local":
                    body.pop("password", None)
                self.cred_call("add", None, body)

        self.app.push_screen(FormModal(f"Add credential at {self.site_id}", fields), done)

    def _cred(self) -> Credential | None:
        key = self._selected("#cred-table")
        return self.creds.get(key) if key else None

    def action_rotate_cred(self) -> None:
        if not self.app.mutation_allowed():  # type: ignore[attr-defined]
            return
        c = self._cred()
        if c is None:
            return

        def got(pw: str | None) -> None:
            if not pw:
                return

            def ok(yes: bool | None) -> None:
                if yes:
                    self.cred_call("rotate", c.id, {"password": pw})

            self.app.push_screen(
                ConfirmModal(
                    f"Rotate the secret of {c.host_id}?",
                    [("site", self.site_id), ("host", c.host_id), ("action", "rotate secret")],
                    "Impact: appliances use the new secret from their next check-in; "
                    "checks fail if it is wrong",
                ),
                ok,
            )

        self.app.push_screen(PromptModal(f"New password for {c.host_id}", password=True), got)

    def _confirm_cred(self, verb: str, title: str, action: str, impact: str) -> None:
        """Confirm a credential action naming site, host and impact, then send it."""
        if not self.app.mutation_allowed():  # type: ignore[attr-defined]
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
                [("site", self.site_id), ("host", c.host_id), ("action", action)],
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

    def action_confirm_appliance(self) -> None:
        """Lift the quarantine, after a dialog naming the box, its site and the impact."""
        if not self.app.mutation_allowed() or not self.appliance.is_quarantined:  # type: ignore[attr-defined]
            return
        a = self.appliance

        def ok(yes: bool | None) -> None:
            if yes:
                self.confirm_call()

        self.app.push_screen(
            ConfirmModal(
                f"Confirm appliance {a.hostname}?",
                [
                    ("appliance", a.id),
                    ("site", self.site_id),
                    ("mac", a.mac or "-"),
                    ("enrolled", a.created_at or "-"),
                ],  # fmt: skip
                "Impact: from its next check-in it receives every credential of this site",
            ),
            ok,
        )

    @work(thread=True, group="mutation")
    def confirm_call(self) -> None:
        what = f"confirm appliance {self.appliance.id}"
        try:
            self.client.confirm_appliance(self.appliance.id)
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.app.record, what, worker_error(e), False)
            return
        self.app.call_from_thread(self.app.record, what, "confirmed: credentials at next check-in")
        self.load_main()

    def action_reveal_cred(self) -> None:
        self._confirm_cred(
            "reveal",
            "Reveal the secret of {host}?",
            "reveal (admin)",
            "The server records this reveal in the audit log",
        )

    @work(thread=True, group="mutation")
    def cred_call(self, op: str, cred_id: str | None, body: dict[str, Any] | None) -> None:
        shown = {k: ("********" if k in ("password", "private_key") else v)
                 for k, v in (body or {}).items()}  # fmt: skip
        what = f"{op} credential {cred_id or ''} {shown}".strip()
        try:
            if op == "add":
                res: Any = self.client.add_credential(self.site_id, body or {})
                result = f"created {res.id} v{res.version}"
            elif op == "rotate":
                res = self.client.update_credential(self.site_id, cred_id or "", body or {})
                result = f"rotated {res.id} now v{res.version}"
            elif op == "delete":
                self.client.delete_credential(self.site_id, cred_id or "")
                result = f"deleted {cred_id}"
            else:
                secret = self.client.reveal_credential(self.site_id, cred_id or "")
                self.app.call_from_thread(
                    self.app.push_screen, JsonModal(f"Secret of {cred_id} (audited)", secret)
                )
                result = f"revealed {cred_id} (audited)"
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.app.record, what, worker_error(e), False)
            return
        self.app.call_from_thread(self.app.record, what, result)
        self.load_main()

    # ---- evidence

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        if event.data_table.id == "drift-table":
            d = self.drift.get(event.row_key.value or "")
            if d is not None:
                self.app.push_screen(JsonModal(f"drift {d.host_id} {d.check}", d.as_json()))
        elif event.data_table.id == "ev-table":
            key = event.row_key.value
            row = next((r for r in self.evidence if r["bundle_hash"] == key), None)
            if row is not None:
                self.app.push_screen(JsonModal(f"bundle {key}", row.get("envelope")))
        elif event.data_table.id == "order-table":
            o = self.orders.get(event.row_key.value or "")
            if o is not None:
                self.app.push_screen(JsonModal(f"order {o.id}", o.as_json()))

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

        from ..pull import pull_export

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
                    self.client, self.site_id, folder, appliance_id=self.appliance.id,
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

    # ---- orders

    def action_new_order(self) -> None:
        if not self.app.mutation_allowed():  # type: ignore[attr-defined]
            return
        hosts = sorted(
            {c.host_id for c in self.appliance.checks} | {c.host_id for c in self.creds.values()}
        )
        rbs = sorted(r for r, s in self.runbooks.items() if s.enabled) or sorted(self.catalog)
        if not hosts or not rbs:
            self.notify("no hosts or runbooks known for this appliance yet", severity="warning")
            return
        fields = [("runbook_id", "runbook", "select", rbs), ("host_id", "host", "select", hosts)]

        def done(v: dict[str, Any] | None) -> None:
            if not v or not v.get("runbook_id") or not v.get("host_id"):
                return
            rb = self.catalog.get(v["runbook_id"])
            if rb is not None and (rb.disruptive or rb.requires_maintenance_window):

                def ok(yes: bool | None) -> None:
                    if yes:
                        self.queue_order(v["runbook_id"], v["host_id"])

                self.app.push_screen(
                    ConfirmModal(
                        f"Run disruptive runbook {v['runbook_id']}?",
                        [
                            ("site", self.site_id),
                            ("appliance", self.appliance.hostname),
                            ("host", v["host_id"]),
                            ("action", f"run {v['runbook_id']}"),
                        ],
                        "Impact: may restart services or reboot; deferred to the maintenance "
                        "window unless allowed",
                    ),  # fmt: skip
                    ok,
                )
            else:
                self.queue_order(v["runbook_id"], v["host_id"])

        self.app.push_screen(
            FormModal(f"Queue an order on {self.appliance.hostname}", fields), done
        )

    @work(thread=True, group="mutation")
    def queue_order(self, runbook_id: str, host_id: str) -> None:
        what = f"POST order run_runbook {runbook_id} on {host_id}"
        try:
            o = self.client.create_order(
                self.appliance.id, "run_runbook", {"runbook_id": runbook_id, "host_id": host_id}
            )
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.app.record, what, worker_error(e), False)
            return
        self.app.call_from_thread(self.app.record, what, f"queued {o.id} ({o.status})")
        self.load_main()
