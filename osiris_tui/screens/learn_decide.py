"""The Learning view's two decisions as forms: approve a candidate (canary choice and soak) and
reject a pattern (a reason, required) — what `osiris learning approve|reject` does, admin only.

Why forms and a confirm, not one key: approving signs a rule that runs unattended on clinic
hosts, so the admin sees the pattern, its runbook and params, the canary choice and the soak
before anything is sent, and the impact in words. The console judges nothing the API judges
(who may decide, whether the params pass their bounds, whether the sites exist): its refusal —
an operator's 403, a 409 ``E_REFUSED`` — comes back word for word in the same form, with what
was typed kept, and nothing changes. Only the shape of what was typed is checked here (a reason
is not empty; numbers are numbers), so the form can say so before a request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from textual.screen import ModalScreen

from ..client import UsageError
from ..widgets.forms import Field, FormFlow, FormScreen
from ..widgets.modals import ConfirmModal

IMPACT = ("Impact: signed into the canary sites' rule sets, then the fleet after the soak "
          "with no failure; it then runs as an L1 rule, unattended, on clinic hosts")  # fmt: skip
REJECT_IMPACT = "Impact: the pattern never becomes a rule; the reason is kept in the audit log"


def _number(text: str) -> int | str | None:
    """Empty → None (the server's default); digits → int; anything else stays text, for the API
    to refuse in its own words (the console keeps no second copy of the bounds)."""
    t = text.strip()
    if not t:
        return None
    return int(t) if re.fullmatch(r"\d{1,12}", t) else t


def approve_body(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as ``POST …/approve`` takes them."""
    sites = [s for s in re.split(r"[,\s]+", values.get("canary_sites", "").strip()) if s]
    percent = _number(values.get("canary_percent", ""))
    if sites and percent is not None:
        raise UsageError("name canary sites or a canary percentage, not both")
    return {"canary_sites": sites, "canary_percent": percent,
            "soak_s": _number(values.get("soak_s", ""))}  # fmt: skip


def reject_reason(values: dict[str, Any]) -> str:
    reason = values.get("reason", "").strip()
    if not reason:
        raise UsageError("a reason is required (it is kept in the audit log)")
    return reason


def canary_text(body: dict[str, Any]) -> str:
    if body["canary_sites"]:
        return "sites " + ", ".join(body["canary_sites"])
    if body["canary_percent"] is not None:
        return f"{body['canary_percent']} % of all sites (a stable hash)"
    return "10 % of all sites (the server's default)"


def soak_text(body: dict[str, Any]) -> str:
    soak = body["soak_s"]
    return "86400 s (the server's default)" if soak is None else f"{soak} s"


def _worker(app: Any, flow: FormFlow, what: str, call: Callable[[], Any],
            after: Callable[[], None], values: dict[str, Any]) -> None:  # fmt: skip
    """The request in a thread worker: the activity log either way, the form back with the
    server's refusal verbatim, ``after`` (a reload) on success."""

    def run() -> None:
        from ..app import worker_error

        try:
            res = call()
        except Exception as e:  # noqa: BLE001 - shown in the form, never a crash
            msg = worker_error(e)
            app.call_from_thread(app.record, what, msg, False)
            flow.refused(values, msg)
            return
        app.call_from_thread(app.record, what, f"{res.get('id')} now {res.get('status')}")
        app.call_from_thread(after)

    app.run_worker(run, thread=True, group="mutation")


def approve_flow(app: Any, cand: Any, after: Callable[[], None]) -> FormFlow:
    """`osiris learning approve ID [--canary-site S …] [--canary-percent P] [--soak S]`."""
    fields = [
        Field("canary_sites", "canary sites (comma or space separated; empty: a percentage)"),
        Field("canary_percent", "or this share of all sites, percent (empty: 10)"),
        Field("soak_s", "soak, seconds in the canary with no failure (empty: 86400)"),
    ]

    def form(values: dict[str, Any], error: str | None) -> FormScreen:
        return FormScreen(f"Approve {cand.id}", fields, approve_body,
                          [f"{cand.check_id} → {cand.runbook_id}, L2 healed "
                           f"{cand.l2_fraction}; admin only"], values, error)  # fmt: skip

    def confirm(body: dict[str, Any]) -> ModalScreen[bool]:
        return ConfirmModal(f"Approve {cand.id} as an L1 rule?", [
            ("pattern", f"{cand.id} ({cand.check_id}, L2 healed {cand.l2_fraction})"),
            ("runbook", cand.runbook_id),
            ("params", json.dumps(cand.params, sort_keys=True)),
            ("canary", canary_text(body)),
            ("soak", soak_text(body)),
        ], IMPACT)  # fmt: skip

    flow: FormFlow

    def send(body: dict[str, Any], values: dict[str, Any]) -> None:
        what = f"POST learning/candidates/{cand.id}/approve {body}"
        call = lambda: app.client.learning_approve(cand.id, **body)  # noqa: E731
        _worker(app, flow, what, call, after, values)

    flow = FormFlow(app, form, confirm, send)
    return flow


def reject_flow(app: Any, cand: Any, after: Callable[[], None]) -> FormFlow:
    """`osiris learning reject ID --reason "…"`."""
    fields = [Field("reason", "why (required; kept in the audit log)")]

    def form(values: dict[str, Any], error: str | None) -> FormScreen:
        return FormScreen(f"Reject {cand.id}", fields, reject_reason,
                          [f"{cand.check_id} → {cand.runbook_id}; admin only"], values,
                          error)  # fmt: skip

    def confirm(reason: str) -> ModalScreen[bool]:
        return ConfirmModal(f"Reject {cand.id}?", [
            ("pattern", f"{cand.id} ({cand.check_id}, L2 healed {cand.l2_fraction})"),
            ("runbook", cand.runbook_id),
            ("reason", reason),
        ], REJECT_IMPACT)  # fmt: skip

    flow: FormFlow

    def send(reason: str, values: dict[str, Any]) -> None:
        what = f"POST learning/candidates/{cand.id}/reject"
        call = lambda: app.client.learning_reject(cand.id, reason)  # noqa: E731
        _worker(app, flow, what, call, after, values)

    flow = FormFlow(app, form, confirm, send)
    return flow
