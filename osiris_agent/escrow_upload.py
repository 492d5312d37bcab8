"""Hand a recovery key to Central Command's vault: ``POST /appliances/{id}/escrow``.

Why its own module: the healing engine knows nothing of the server (healing/escrow.py takes any
``EscrowSink``); this is the one sink the running agent uses. It answers only once the server
stored the key (its ``escrow_ref``); every failure raises, and the caller then enables nothing.
The secret travels in the request body over the agent's authenticated server connection, never
in a URL, a log line or an exception message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import AgentContext


class ServerEscrow:
    """The agent's escrow sink: the server's vault, under this appliance's own token."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx

    def __call__(self, host_id: str, kind: str, protector_id: str, secret: str) -> str:
        body = {"host_id": host_id, "kind": kind, "protector_id": protector_id, "secret": secret}
        try:
            doc = self.ctx.client.post(f"/appliances/{self.ctx.appliance_id}/escrow", body)
        finally:
            body.clear()
        ref = doc.get("escrow_ref") if isinstance(doc, dict) else None
        if not isinstance(ref, str) or not ref:
            raise RuntimeError("the server's answer named no escrow_ref")
        return ref
