"""Alert delivery for critical incidents, off the request path.

A request thread only enqueues the incident id; one background thread sends e-mail (SMTP,
STARTTLS) and signed webhooks, so a slow or dead mail server never holds a request (lessons D:
blocking smtplib inside handlers). Failures are logged by type, never with secrets.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from typing import TYPE_CHECKING

from osiris_server.alerts import AlertError, send_email, send_webhook
from osiris_server.db import incidents as db_incidents

if TYPE_CHECKING:
    from osiris_server.app import App


class Alerter:
    def __init__(self, app: App) -> None:
        self.app = app
        self._q: queue.Queue[str | None] = queue.Queue(maxsize=10000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        cfg = self.app.cfg
        return bool((cfg.smtp and cfg.smtp.recipients) or cfg.webhooks)

    def submit(self, incident_id: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="osiris-alerts", daemon=True)
                self._thread.start()
        try:
            self._q.put_nowait(incident_id)
        except queue.Full:
            self.failed += 1

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                self._deliver(item)
            finally:
                self._q.task_done()

    def _deliver(self, incident_id: str) -> None:
        inc = db_incidents.get(self.app.db, incident_id)
        if inc is None:
            return
        cfg = self.app.cfg
        subject = f"[osiris] {inc['severity'].upper()} {inc['kind']} at site {inc['site_id']}"
        body = (
            f"Incident {inc['id']}\nSite: {inc['site_id']}\nAppliance: {inc['appliance_id']}\n"
            f"Host: {inc['host_id']}\nKind: {inc['kind']}\nSeverity: {inc['severity']}\n"
            f"First seen: {inc['first_seen']}\n\n{inc['summary']}\n"
        )
        ok = False
        if cfg.smtp and cfg.smtp.recipients:
            try:
                send_email(cfg.smtp, subject, body)
                ok = True
                self.sent += 1
            except AlertError as exc:
                self.failed += 1
                self._log("email", exc)
        payload = {
            "event": "incident",
            "incident": {
                k: inc[k]
                for k in (
                    "id",
                    "site_id",
                    "appliance_id",
                    "host_id",
                    "kind",
                    "severity",
                    "summary",
                    "first_seen",
                )
            },
        }
        for hook in cfg.webhooks:
            try:
                send_webhook(hook.url, hook.secret, payload)
                ok = True
                self.sent += 1
            except AlertError as exc:
                self.failed += 1
                self._log("webhook", exc)
        if ok:
            try:
                db_incidents.mark_alerted(self.app.db, incident_id)
            except Exception:  # noqa: BLE001 - shutting down; the alert itself went out
                pass

    def _log(self, channel: str, exc: Exception) -> None:
        line = {"event": "alert_failed", "channel": channel, "error": str(exc)[:200]}
        sys.stderr.write(json.dumps(line) + "\n")

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until queued alerts are handled (tests, shutdown)."""
        if self._thread is None:
            return
        done = threading.Event()

        def waiter() -> None:
            self._q.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        done.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self.drain(5.0)
            self._q.put(None)
            self._thread.join(timeout=5)
