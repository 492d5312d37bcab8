"""Flushing: deliver queued evidence (and incidents) to the server, and verify its receipts.

Why its own module: the outbox keeps every signed bundle until the server's signed log proves it
holds it. Sending in batches, acknowledging only what the witness verified, distrusting a log
that rolled back or forked, and delivering the durable incident queue is the agent's whole
outbound path — it runs in every cycle and, with backoff, between cycles while the server is
unreachable.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from osiris_core import severity
from osiris_core.errors import SchemaError
from osiris_core.ids import HOST_ID

from .client import AuthRefused, ClientError, ServerRefused, ServerUnreachable
from .witness import LogInconsistent

if TYPE_CHECKING:
    from .context import AgentContext, CycleReport

log = logging.getLogger("osiris.agent")

BATCH = 100
# After an outage the queue drains in bigger batches: the server signs at most one checkpoint per
# interval, so a receipt costs up to that interval whatever the batch size. Capped by the
# server's 500 envelopes per request and well under its 8 MiB request body limit.
CATCHUP_BATCH = 500
CATCHUP_BYTES = 4 * 1024 * 1024


class Flusher:
    """The outbox flush and incident delivery on the context."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx

    def flush(self, report: CycleReport, max_batches: int | None = None) -> bool:
        """Send queued bundles in batches of ≤ 100 and acknowledge verified receipts.

        Returns True when the queue was drained (or nothing could be sent for a reason that
        retrying will not fix), False when the server was unreachable.
        """
        ctx = self.ctx
        outbox, witness = ctx.outbox, ctx.witness
        self.send_incidents(report)
        if not witness.trusted:
            report.errors.append(f"not trusting the server's log: {witness.distrust_reason}")
            return True
        batches = 0
        while max_batches is None or batches < max_batches:
            size = CATCHUP_BATCH if outbox.depth() > BATCH else BATCH
            batch = outbox.pending(size)
            if not batch:
                return True
            total = 0
            for n, p in enumerate(batch):
                total += len(p.data)
                if total > CATCHUP_BYTES and n > 0:
                    batch = batch[:n]
                    break
            batches += 1
            body = {
                "envelopes": [p.envelope for p in batch],
                "log_size_seen": witness.size,
            }
            try:
                resp = ctx.client.post("/evidence", body)
            except ServerUnreachable as e:
                outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                return False
            except ServerRefused as e:
                report.reachable = True
                if e.error_code == "E_LOG_SIZE":
                    # The server no longer has the tree we verified: a rolled-back log.
                    why = f"log rolled back: server says our verified size is beyond its log ({e})"
                    witness.distrust(why, {"log_size_seen": witness.size})
                    report.errors.append(f"log_inconsistent: {why}")
                    self.send_incidents(report)
                    return True
                outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                return True
            except AuthRefused as e:
                outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                report.reachable = True
                return True
            report.reachable = True
            try:
                verdict = witness.verify_batch(resp, batch)
            except LogInconsistent as e:
                log.error("log_inconsistent: %s", e)
                witness.distrust(str(e), {"batch_first_seq": batch[0].seq})
                report.errors.append(f"log_inconsistent: {e}")
                self.send_incidents(report)
                return True
            witness.commit(verdict, outbox.ack)
            report.acked += len(verdict.acks)
            for seq, err in verdict.rejected:
                outbox.mark_rejected(seq, err)
                with ctx.db.tx():
                    ctx.db.add_incident(
                        "evidence_rejected", "high", f"server rejected bundle seq {seq}",
                        {"seq": seq, "error": err},
                    )  # fmt: skip
        return True

    def send_incidents(self, report: CycleReport) -> None:
        """Deliver queued incidents (``POST /incidents``, batches of ≤ 100), oldest first; they
        stay queued while the server is unreachable."""
        db = self.ctx.db
        pending = db.unsent_incidents()
        while pending:
            batch, pending = pending[:100], pending[100:]
            items = []
            for inc in batch:
                details = dict(inc["details"])
                item = {
                    "kind": inc["kind"],
                    # One scale end to end (osiris_core/severity.py); a row queued by an older
                    # agent may still say info/warning.
                    "severity": _server_severity(inc["severity"]),
                    "summary": inc["summary"][:1024],
                    "details": details,
                }
                host = details.get("host_id")
                if HOST_ID.match(host):
                    item["host_id"] = host
                items.append(item)
            try:
                self.ctx.client.post("/incidents", {"incidents": items})
            except ServerRefused as e:
                # Refused as malformed: resending cannot help; say so loudly, then drop it.
                log.error("server refused %d incident(s) (%s): %s", len(items),
                          ", ".join(sorted({i["kind"] for i in items})), e)  # fmt: skip
                report.errors.append(str(e))
            except ClientError:
                return
            with db.tx():
                for inc in batch:
                    db.mark_incident_sent(inc["id"])


def _server_severity(word: str) -> str:
    """The scale's word for a locally stored severity; an unknown word (a bug) is ``high``, so
    it still reaches a person rather than being refused by the server and dropped."""
    try:
        return severity.normalise(word)
    except SchemaError:
        return "high"
