"""Reseller mode: every evidence event also goes to the reseller's syslog and RMM webhook.

Vocabulary: the *reseller* here is the server's *partner* (osiris_core.partner): the
``deployment.reseller_id`` this appliance signs into every bundle must be its site's partner id,
or the server refuses the bundle (``E_RESELLER``).

A reseller's tools (SIEM, RMM) do not speak transparency logs, so each recorded bundle is also
emitted as:

* an RFC 5424 syslog message, over UDP (one datagram) or TCP (RFC 6587 octet counting), with the
  facts in structured data ``[osiris@32473 …]`` (32473 is the documentation enterprise number of
  RFC 5612) — never the bundle's free text beyond its outcome summary;
* a JSON POST to the webhook, signed with the appliance's evidence key: ``X-Osiris-Signature`` is
  base64 Ed25519 over the exact body bytes and ``X-Osiris-Key`` the appliance vkey name + id, so
  the receiver can tell the event came from this appliance and was not altered.

These channels are best effort: a dead receiver never blocks the cycle or loses evidence (the
outbox to Central Command is the system of record); failures are logged and counted.
"""

from __future__ import annotations

import base64
import http.client
import logging
import re
import socket
import ssl
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from osiris_core import canonical
from osiris_core.keys import Signer
from osiris_core.partner import RESELLER_FIELD

log = logging.getLogger("osiris.agent.reseller")

FACILITY_LOCAL0 = 16
SEVERITY = {
    "compliant": 6,  # informational
    "healed": 5,  # notice
    "deferred": 5,
    "rejected": 5,
    "expired": 5,
    "alert": 4,  # warning
    "reverted": 4,
    "failed": 3,  # error
    "escalated": 3,
}
SD_ID = "osiris@32473"


def event_of(envelope: dict[str, Any]) -> dict[str, Any]:
    """The compact event a reseller receives for one bundle."""
    b = envelope["bundle"]
    from osiris_core.evidence import bundle_hash

    return {
        "event": "osiris.evidence",
        "bundle_hash": bundle_hash(b),
        "site_id": b["site_id"],
        "appliance_id": b["appliance_id"],
        RESELLER_FIELD: b[RESELLER_FIELD],
        "seq": b["seq"],
        "host_id": b["host_id"],
        "check": b["check"],
        "controls": b["controls"],
        "outcome": b["outcome"],
        "tier": b["tier"],
        "order_id": b["order_id"],
        "runbook_id": b["runbook_id"],
        "finished_at": b["finished_at"],
    }


def _sd_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(event: dict[str, Any], hostname: str = "-", procid: str = "-") -> bytes:
    """One RFC 5424 message: ``<PRI>1 TS HOST APP PROCID MSGID [SD] MSG``."""
    pri = FACILITY_LOCAL0 * 8 + SEVERITY.get(event["outcome"], 5)
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    params = ("bundle_hash", "site_id", "appliance_id", "seq", "host_id", "check", "outcome")
    sd = " ".join(f'{k}="{_sd_escape(str(event[k]))}"' for k in params)
    msg = f"{event['check']} on {event['host_id']}: {event['outcome']} (seq {event['seq']})"
    host = (hostname or "-")[:255].replace(" ", "_")
    line = f"<{pri}>1 {ts} {host} osiris-agent {procid} evidence [{SD_ID} {sd}] {msg}"
    return line.encode("utf-8")


class ResellerSink:
    """Sends each evidence event to the configured syslog target and webhook."""

    def __init__(
        self,
        signer: Signer,
        syslog_target: str | None = None,
        webhook_url: str | None = None,
        ca_file: str | None = None,
        timeout: float = 3.0,
    ) -> None:
        self.signer = signer
        self.timeout = timeout
        self.errors = 0
        self.syslog: tuple[str, str, int] | None = None
        if syslog_target:
            m = re.fullmatch(r"(udp|tcp)://(\[[0-9A-Fa-f:]+\]|[^:\[\]]+)(?::(\d+))?", syslog_target)
            if m is None:
                raise ValueError(f"bad syslog target {syslog_target!r}")
            port = int(m.group(3)) if m.group(3) else 514
            self.syslog = (m.group(1), m.group(2).strip("[]"), port)
        self.webhook = webhook_url
        self._ctx = ssl.create_default_context(cafile=ca_file) if webhook_url else None
        self._hostname = socket.gethostname()

    def emit(self, envelope: dict[str, Any]) -> None:
        """Best effort: never raises."""
        ev = event_of(envelope)
        if self.syslog is not None:
            try:
                self._send_syslog(syslog_message(ev, self._hostname))
            except OSError as e:
                self.errors += 1
                log.warning("reseller syslog send failed: %s", e)
        if self.webhook is not None:
            try:
                self._send_webhook(ev)
            except (OSError, http.client.HTTPException, RuntimeError) as e:
                self.errors += 1
                log.warning("reseller webhook send failed: %s", e)

    def _send_syslog(self, msg: bytes) -> None:
        assert self.syslog is not None
        proto, host, port = self.syslog
        if proto == "udp":
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.sendto(msg, (host, port))
        else:
            with socket.create_connection((host, port), timeout=self.timeout) as s:
                s.sendall(str(len(msg)).encode("ascii") + b" " + msg)  # RFC 6587 octet counting

    def signature_headers(self, body: bytes) -> dict[str, str]:
        sig = base64.b64encode(self.signer.sign(body)).decode("ascii")
        return {
            "X-Osiris-Signature": f"ed25519={sig}",
            "X-Osiris-Key": f"{self.signer.name}+{self.signer.key_id_hex}",
        }

    def _send_webhook(self, event: dict[str, Any]) -> None:
        assert self.webhook is not None
        body = canonical.dumps(event)
        parts = urlsplit(self.webhook)
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=self.timeout, context=self._ctx
            )
        else:
            conn = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=self.timeout
            )
        try:
            headers = {"Content-Type": "application/json", **self.signature_headers(body)}
            conn.request("POST", parts.path or "/", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"webhook answered {resp.status}")
        finally:
            conn.close()
