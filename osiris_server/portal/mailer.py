"""Sign-in mail, sent from one background thread.

Why not inline: the sign-in answer must take the same time whether or not the address is
registered (signin.py); an SMTP round trip inside the request would tell them apart. A full
queue drops the mail (the contact asks again) rather than block a request; a failed send is
logged without the link, which is a credential.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections.abc import Callable

from osiris_server.alerts import AlertError, SmtpConfig, send_email

Send = Callable[[SmtpConfig, str, str, list[str], str], None]


def _log(obj: dict[str, object]) -> None:
    try:
        sys.stderr.write(json.dumps(obj) + "\n")
    except (OSError, ValueError):
        pass


class Mailer:
    def __init__(self, smtp: SmtpConfig, from_name: str, send: Send | None = None) -> None:
        self.smtp = smtp
        self.from_name = from_name
        self._send = send or (lambda c, s, b, to, n: send_email(c, s, b, to=to, from_name=n))
        self._q: queue.Queue[tuple[str, str, str] | None] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, to: str, subject: str, body: str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="portal-mail", daemon=True)
                self._thread.start()
        try:
            self._q.put_nowait((to, subject, body))
        except queue.Full:
            _log({"event": "portal_mail_dropped", "reason": "queue full"})

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            to, subject, body = item
            try:
                self._send(self.smtp, subject, body, [to], self.from_name)
                _log({"event": "portal_mail_sent"})
            except AlertError as exc:  # the message names the relay, never the link
                _log({"event": "portal_mail_failed", "error": str(exc).split(":")[0][:200]})

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            t = self._thread
        if t is not None and t.is_alive():
            self._q.put(None)
            t.join(timeout)
