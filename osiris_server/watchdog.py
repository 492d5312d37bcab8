"""The appliance watchdog: a silent appliance, or a silent clinic host, becomes an incident.

Why: an appliance that stops checking in used to show only as *offline* in stats and the
console, so a clinic could go unmonitored for weeks (issue 16). Every server process runs a
``Watchdog`` thread; each tick is one write transaction (the store's one writer across
processes and hosts), so ticks of several servers run one after another, each sees what the
previous one raised, and a subject has at most one open watchdog incident (the partial unique
index ``incidents_watchdog_open`` holds it to that even against a bug here).

Rules (docs/server.md, Watchdog):

* ``appliance_silent`` (**critical**: the whole clinic is unwatched) when an appliance has not
  checked in for more than ``watchdog_missed_checkins`` × the site's check-in interval
  (default 3). Resolved by the watchdog, audited (``watchdog.resolve``), once it checks in again.
* ``host_silent`` (**high**) when a clinic host with a credential has produced no evidence for
  ``watchdog_host_silent_min`` minutes (default 1440; 0 = off) while an appliance of its site is
  online; resolved when its evidence arrives again (or its credential is removed).
* **No storms.** Silence is measured from ``max(last seen, since)``, where ``since`` is when the
  watchdog (any server) last resumed watching: a tick that finds the previous one more than
  ``gap_s`` (two ticks) ago (every server was down, a restart) or in the future (the clock went
  back) resets ``since``
  to now. Appliances that could not reach a dead server, and a clock that jumped, therefore
  raise nothing until they have been silent for a full threshold after the watchdog resumed.
* A tick within ``tick_s / 2`` of another server's is skipped: N servers do not each scan.
* **Resolving closes the page**: the watchdog's resolve queues, in its own transaction, the
  same follow-up an operator's resolve does (PagerDuty Events v2 ``resolve``, same
  ``dedup_key``, to every PagerDuty route that got the trigger; ``api/alert_fanout.py``).
* The same thread runs the learning loop's timer (``learning.tick``): a canary rule whose soak
  ended goes fleet-wide within a tick even if no canary site checks in. One thread per
  process for every timed job; a failure of one job is logged and does not skip the other.
  The third job is the RFC 3161 cadence (``tsa.tick``: the newest checkpoint timestamped once a
  ``[tsa] cadence_s``, by the one server that wins its lease).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from osiris_core.errors import OsirisError
from osiris_server import learning, tsa
from osiris_server.db import alert_threshold
from osiris_server.db import audit as db_audit
from osiris_server.db import incidents as db_incidents
from osiris_server.db import watchdog as db_watchdog

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.db.engine import Writer

ACTOR = "server:watchdog"
SEVERITY = {"appliance_silent": "critical", "host_silent": "high"}
CLOCK_SLACK_S = 5  # a previous tick this far in the future is a clock that went back


def _was(inc: dict[str, Any]) -> int:
    """The last sign of life an open watchdog incident was raised on: anything newer ends it."""
    try:
        return int(inc["details"].get("last_epoch") or 0)
    except (TypeError, ValueError):
        return 0


def _epoch(ts: str | None) -> int:
    if not ts:
        return 0
    try:
        return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


class Watchdog:
    """This process's watchdog thread (see the module docstring)."""

    def __init__(self, app: App, tick_s: float) -> None:
        self.app = app
        self.tick_s = tick_s
        # a tick this long after the previous one: nobody was watching in between (every server
        # down, or the clock jumped); ticked by hand (tick_s 0, tests), a minute
        self.gap_s = 2 * tick_s + 1 if tick_s > 0 else 60.0
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.tick_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="osiris-watchdog", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        jobs = (
            ("watchdog_error", self.tick),
            ("learning_tick_error", self._learning),
            ("tsa_tick_error", self._tsa),
            ("worm_error", self._worm),
        )
        while not self._stop.wait(self.tick_s):
            for event, job in jobs:  # one failing does not stop the other
                try:
                    job()
                except Exception as exc:  # noqa: BLE001 - the database is down; the next tick retries
                    print(
                        json.dumps({"event": event, "type": type(exc).__name__}),
                        file=sys.stderr,
                        flush=True,
                    )

    def _learning(self) -> None:
        """The other timed job of this thread: canary rules whose soak ended go fleet-wide."""
        learning.tick(self.app)

    def _tsa(self) -> None:
        """The third: the daily RFC 3161 anchor of the newest checkpoint (osiris_server/tsa.py)."""
        tsa.tick(self.app)

    def _worm(self) -> None:
        """The WORM copy's pass, at ``[worm] cadence_s``, lease-guarded (osiris_server/worm.py)."""
        from osiris_server import worm

        try:
            worm.tick(self.app)
        except OsirisError as exc:  # a bucket not fit for WORM, S3 down: say which, retry later
            print(
                json.dumps({"event": "worm_error", "code": exc.code, "message": str(exc)[:300]}),
                file=sys.stderr,
                flush=True,
            )

    # ------------------------------------------------------------------ one tick
    def tick(self, at: float | None = None) -> dict[str, list[str]]:
        """Raise and resolve what is due at ``at`` (default now); returns the incident ids."""
        now = int(time.time() if at is None else at)
        self.app.heartbeats.flush()  # this process's buffered check-ins count
        out: dict[str, list[str]] = {"raised": [], "resolved": []}
        alerts: list[str] = []
        with self.app.db.write() as w:
            prev = db_watchdog.last_tick(w)
            if (
                prev is not None
                and prev.ticked_by != self.name
                and 0 <= now - prev.tick_epoch < self.tick_s / 2
            ):
                return out  # another server just ticked
            resume = prev is None or not (-CLOCK_SLACK_S <= now - prev.tick_epoch <= self.gap_s)
            since = now if resume else prev.since_epoch  # type: ignore[union-attr]
            db_watchdog.save_tick(w, db_watchdog.Tick(now, since, self.name), prev is not None)
            open_ = {
                (r["kind"], r["site_id"], r["host_id"]): r for r in db_watchdog.open_incidents(w)
            }
            online = self._appliances(w, now, since, open_, out, alerts)
            self._hosts(w, now, since, online, open_, out, alerts)
        if alerts or out["resolved"]:
            self.app.alerter.kick()
        return out

    def _appliances(
        self, w: Writer, now: int, since: int, open_: dict, out: dict, alerts: list[str]
    ) -> dict[str, str]:
        """Appliance silence; returns {site_id: an online appliance id}."""
        online: dict[str, str] = {}
        for a in db_watchdog.appliances(w):
            last = int(a["last_seen_epoch"] or 0) or _epoch(a["created_at"])
            limit = int(a["watchdog_missed_checkins"]) * int(a["checkin_interval_s"])
            inc = open_.get(("appliance_silent", a["site_id"], a["id"]))
            if now - last <= limit:
                online.setdefault(a["site_id"], a["id"])
            if inc is not None:
                if last > _was(inc):
                    self._resolve(w, inc, f"appliance {a['id']} checked in again", out)
                continue
            silent = now - max(last, since)
            if silent > limit:
                summary = (
                    f"appliance {a['id']} ({a['hostname']}) has not checked in for "
                    f"{silent // 60} min ({silent // int(a['checkin_interval_s'])} "
                    f"check-ins missed; threshold {a['watchdog_missed_checkins']})"
                )
                self._raise(
                    w,
                    a["site_id"],
                    a["id"],
                    a["id"],
                    "appliance_silent",
                    summary,
                    {
                        "last_seen_epoch": a["last_seen_epoch"],
                        "last_epoch": last,
                        "silent_s": silent,
                        "threshold_s": limit,
                    },
                    out,
                    alerts,
                )
        return online

    def _hosts(
        self,
        w: Writer,
        now: int,
        since: int,
        online: dict[str, str],
        open_: dict,
        out: dict,
        alerts: list[str],
    ) -> None:
        minutes = {
            a["site_id"]: int(a["watchdog_host_silent_min"]) for a in db_watchdog.appliances(w)
        }
        watched = set()
        for h in db_watchdog.hosts(w):
            site, host = h["site_id"], h["host_id"]
            watched.add((site, host))
            inc = open_.get(("host_silent", site, host))
            ev = db_watchdog.newest_evidence(w, site, host)
            last = max(_epoch(ev["received_at"]) if ev else 0, _epoch(h["created_at"]))
            if inc is not None:
                if last > _was(inc):
                    self._resolve(w, inc, f"host {host} produces evidence again", out)
                continue
            limit = minutes.get(site, 0) * 60
            if not limit or site not in online:
                continue  # off, or the appliance itself is silent (appliance_silent says so)
            silent = now - max(last, since)
            if silent > limit:
                who = ev["appliance_id"] if ev else online[site]
                summary = (
                    f"host {host} has produced no evidence for {silent // 60} min while "
                    f"appliance {online[site]} is online (threshold {limit // 60} min)"
                )
                self._raise(
                    w,
                    site,
                    who,
                    host,
                    "host_silent",
                    summary,
                    {"last_epoch": last, "silent_s": silent, "threshold_s": limit},
                    out,
                    alerts,
                )
        for (kind, site, host), inc in open_.items():
            if kind == "host_silent" and (site, host) not in watched:
                self._resolve(w, inc, f"host {host} is no longer monitored", out)

    def _raise(
        self,
        w: Writer,
        site_id: str,
        appliance_id: str,
        host_id: str,
        kind: str,
        summary: str,
        details: dict[str, Any],
        out: dict,
        alerts: list[str],
    ) -> None:
        sev = SEVERITY[kind]
        row, new = db_incidents.open_or_bump(
            w, site_id, appliance_id, host_id, kind, sev, summary, details
        )
        if not new:
            return
        db_audit.record(
            w,
            ACTOR,
            "watchdog.raise",
            row["id"],
            site_id,
            None,
            {"kind": kind, "subject": host_id, **details},
        )
        out["raised"].append(row["id"])
        if alert_threshold.alerts(w, site_id, sev):
            self.app.alerter.queue(w, row["id"])  # in the incident's transaction: never lost
            alerts.append(row["id"])

    def _resolve(self, w: Writer, inc: dict[str, Any], note: str, out: dict) -> None:
        if db_incidents.resolve(w, inc["id"], ACTOR, note):
            db_audit.record(
                w,
                ACTOR,
                "watchdog.resolve",
                inc["id"],
                inc["site_id"],
                None,
                {"kind": inc["kind"], "subject": inc["host_id"], "note": note},
            )
            # as an operator's resolve does, in this transaction: every PagerDuty route that got
            # the trigger is sent resolve (same dedup_key), so the page closes by itself
            self.app.alerter.follow_up(w, inc["id"], "resolve")
            out["resolved"].append(inc["id"])
