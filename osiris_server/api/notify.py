"""Alert delivery for incidents, off the request path, durable and shared by every server.

An alert is a row of the index's ``alert_queue`` (``db/alert_queue.py``) written by
``Alerter.queue(w, incident_id)`` in the same transaction as the incident: once the incident is
committed its alert cannot be lost, whoever dies next. After the commit the request calls
``kick()`` and returns; a request never waits for a mail server (lessons D: blocking smtplib
inside handlers).

One background thread per process claims due rows with a lease (``lease_s``), sends e-mail
(SMTP, STARTTLS) and signed webhooks, then marks the row sent. With several servers on one
database every process polls the same queue and the lease decides who sends: an alert goes
out once, by one process. A process killed before sending leaves the row unsent — unclaimed,
or claimed until its lease runs out — and any process sends it next (the restarted one at
start, the others on their next poll after the lease). A failed delivery (every channel
failed) is released with a backoff and tried again, up to ``MAX_ATTEMPTS``. Delivery is
at-least-once only in one narrow case: a process that dies after the mail left but before
``mark_sent`` committed; and a delivery slower than its lease could be sent twice, which is why
the lease is sized from the channels' own timeouts. Failures are logged by type, never with
secrets.

Routed alerts (issue 16, ``api/alert_fanout.py``): when the incident's site or partner has
alert routes, ``queue`` writes one delivery row per route instead (retries with capped
exponential backoff, then ``dead``), and the same thread also sends those and runs the SLA
sweep; the global channels above stay the fallback for sites without any route.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from osiris_server.alerts import AlertError, send_email, send_webhook
from osiris_server.api import alert_fanout
from osiris_server.db import alert_deliveries, alert_queue
from osiris_server.db import incidents as db_incidents

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.db.engine import Writer

MAX_ATTEMPTS = 5
RETRY_BASE_S = 30  # a failed alert is retried after 30 s, 60 s, 120 s, 240 s
WEBHOOK_TIMEOUT_S = 5.0  # osiris_server.alerts.send_webhook's default


class Alerter:
    """The process's side of the shared alert queue (see the module docstring)."""

    def __init__(self, app: App, poll_s: float | None = None) -> None:
        self.app = app
        self.poll_s = float(app.cfg.alert_poll_s if poll_s is None else poll_s)
        self.claimer = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()  # set while this process has nothing in flight
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.lease_s = self._lease()
        self._start()  # at once: a previous process may have left alerts unsent; SLA timers

    @property
    def enabled(self) -> bool:
        cfg = self.app.cfg
        return bool((cfg.smtp and cfg.smtp.recipients) or cfg.webhooks)

    def _lease(self) -> int:
        """Longer than any delivery can take (SMTP: a few exchanges of ``timeout`` each; each
        webhook: connect + read), so a live sender is never overtaken by a second one."""
        cfg = self.app.cfg
        smtp_s = 8 * cfg.smtp.timeout if cfg.smtp else 0
        return int(60 + smtp_s + 2 * WEBHOOK_TIMEOUT_S * len(cfg.webhooks))

    # ------------------------------------------------------------------ the request side
    def queue(self, w: Writer, incident_id: str, fallback_only: bool = False) -> None:
        """Queue an alert for ``incident_id`` in the incident's own transaction ``w``; call
        ``kick()`` after it committed. The site's and partner's routes if it has any, else the
        global channels; nothing is queued when there is neither."""
        if not fallback_only and alert_fanout.queue_routes(w, incident_id):
            return
        if self.enabled:
            alert_queue.enqueue(w, incident_id, int(time.time()))

    def follow_up(self, w: Writer, incident_id: str, event: str) -> None:
        """In the acknowledging/resolving transaction: tell the PagerDuty routes (kick after)."""
        alert_fanout.queue_follow_up(w, incident_id, event)

    def kick(self) -> None:
        """Wake the sender (after the transaction that queued an alert committed)."""
        self._start()
        self._wake.set()

    def submit(self, incident_id: str) -> None:
        """Queue and send an alert for an incident already committed (its own transaction)."""
        with self.app.db.write() as w:
            self.queue(w, incident_id)
        self.kick()

    # ------------------------------------------------------------------ the sender
    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="osiris-alerts", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while self._send_due() and not self._stop.is_set():
                    pass
                alert_fanout.sweep_sla(self.app)
            except Exception as exc:  # noqa: BLE001 - the database is down; the next poll retries
                self._log("queue", exc)
            self._wake.wait(self.poll_s)

    def _send_due(self) -> bool:
        """Claim and send one batch of due alerts; False when there was none."""
        self._idle.clear()
        try:
            at = int(time.time())
            won = alert_queue.claim(self.app.db, self.claimer, at, self.lease_s, MAX_ATTEMPTS)
            for row in won:
                if self._stop.is_set():
                    break  # shutting down: the lease runs out and another process sends it
                self._deliver_row(row)
            routed = alert_fanout.send_due(self.app, self.claimer, self.lease_s, self._stop.is_set)
            return bool(won) or routed
        finally:
            self._idle.set()

    def _deliver_row(self, row: dict[str, Any]) -> None:
        error = self._deliver(row["incident_id"])
        if error is None:
            alert_queue.mark_sent(
                self.app.db, row["id"], row["incident_id"], self.claimer, int(time.time())
            )
            return
        attempts = int(row["attempts"])
        retry_at = int(time.time()) + RETRY_BASE_S * 2 ** (attempts - 1)
        alert_queue.release(self.app.db, row["id"], self.claimer, retry_at, error)
        if attempts >= MAX_ATTEMPTS:
            self._log("gave_up", AlertError(f"alert {row['id']} failed {attempts} times"))

    def _deliver(self, incident_id: str) -> str | None:
        """Send the incident on every channel; None if at least one took it, else the error."""
        inc = db_incidents.get(self.app.db, incident_id)
        if inc is None:
            return None  # nothing left to announce
        cfg = self.app.cfg
        subject = f"[osiris] {inc['severity'].upper()} {inc['kind']} at site {inc['site_id']}"
        body = (
            f"Incident {inc['id']}\nSite: {inc['site_id']}\nAppliance: {inc['appliance_id']}\n"
            f"Host: {inc['host_id']}\nKind: {inc['kind']}\nSeverity: {inc['severity']}\n"
            f"First seen: {inc['first_seen']}\n\n{inc['summary']}\n"
        )
        ok = False
        errors: list[str] = []
        if cfg.smtp and cfg.smtp.recipients:
            try:
                send_email(cfg.smtp, subject, body)
                ok = True
                self.sent += 1
            except AlertError as exc:
                self.failed += 1
                errors.append(f"email: {exc}")
                self._log("email", exc)
        keys = ("id", "site_id", "appliance_id", "host_id", "kind", "severity", "summary")
        payload = {
            "event": "incident",
            "incident": {k: inc[k] for k in (*keys, "first_seen")},
        }
        for hook in cfg.webhooks:
            try:
                send_webhook(hook.url, hook.secret, payload, timeout=WEBHOOK_TIMEOUT_S)
                ok = True
                self.sent += 1
            except AlertError as exc:
                self.failed += 1
                errors.append(f"webhook: {exc}")
                self._log("webhook", exc)
        return None if ok else "; ".join(errors) or "no channel"

    def log_failure(self, channel: str, error: str, state: str) -> None:
        """A routed delivery's failure (already without secrets: alert_presets)."""
        self.failed += 1
        line = {"event": "alert_failed", "channel": channel, "error": error[:200], "state": state}
        sys.stderr.write(json.dumps(line) + "\n")

    def _log(self, channel: str, exc: Exception) -> None:
        line = {"event": "alert_failed", "channel": channel, "error": str(exc)[:200]}
        sys.stderr.write(json.dumps(line) + "\n")

    # ------------------------------------------------------------------ lifecycle
    def drain(self, timeout: float = 10.0) -> None:
        """Wait until no alert is due now and this process has none in flight (tests,
        shutdown). Alerts waiting for a retry or held by another process's lease are not due."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.kick()
            if self._idle.wait(max(0.0, deadline - time.monotonic())):
                try:
                    at = int(time.time())
                    due = alert_queue.due_count(self.app.db, at, MAX_ATTEMPTS)
                    due += alert_deliveries.due_count(self.app.db, at)
                except Exception:  # noqa: BLE001 - the database is gone: nothing to wait for
                    return
                if due == 0 and self._idle.is_set():
                    return
            time.sleep(0.02)

    def close(self) -> None:
        """Stop the sender after the alert in hand (unsent ones stay queued for any server)."""
        if self._thread is not None:
            self.drain(5.0)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
