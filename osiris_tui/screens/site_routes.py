"""A site's alert routes, edited from `:settings` (issue 16): ``n`` adds one, ``d`` deletes the
one under the cursor — `osiris alerts add-route|rm-route --site` in the console.

Kept apart from ``site_settings.py`` (which lists the routes) because the route form carries
secrets: a Slack/Teams URL (the URL *is* the token), the generic webhook's signing secret and a
PagerDuty routing key are typed into masked fields, never shown in the confirm dialog (it says
"(hidden)"), never written into the activity log (which names site, route name, preset and
level only), and after the request only the server's masked target is on screen. The console
judges nothing: the API's refusal (an http URL, a short key, an auditor's 403) comes back
verbatim in the same form, with what was typed kept, and nothing is stored.
"""

from __future__ import annotations

import re
from typing import Any

from textual.screen import ModalScreen

from .. import alert_calls
from ..widgets.forms import Field, FormFlow, FormScreen
from ..widgets.modals import ConfirmModal

PRESETS = ("email", "generic", "slack", "teams", "pagerduty")
SECRET_FIELDS = ("url", "secret", "routing_key")
# which of the form's fields each preset takes (the API refuses any other)
TAKES = {
    "email": ("emails",),
    "generic": ("url", "secret"),
    "slack": ("url",),
    "teams": ("url",),
    "pagerduty": ("routing_key",),
}


def route_fields() -> list[Field]:
    """The preset select is named ``kind`` so the form shows only that preset's fields."""
    return [
        Field("name", "route name (what operators call it)"),
        Field("kind", "preset", kind="select", options=PRESETS),
        Field("level", "escalation level (0: the first alert; k: the k-th SLA breach)",
              value="0"),
        Field("emails", "recipients (comma or space separated)", only=("email",)),
        Field("url", "webhook URL (https; a secret: shown masked)", kind="password",
              only=("generic", "slack", "teams")),
        Field("secret", "signing secret (16+ characters)", kind="password", only=("generic",)),
        Field("routing_key", "PagerDuty routing key", kind="password", only=("pagerduty",)),
    ]  # fmt: skip


def route_body(values: dict[str, Any]) -> dict[str, Any]:
    """The API's body: only the preset's own fields, and only those typed (a missing one is the
    API's to name). A level that is not a number goes as typed, for the API to refuse."""
    preset = values.get("kind") or "email"
    level_text = str(values.get("level", "")).strip()
    level: int | str = int(level_text) if re.fullmatch(r"\d{1,3}", level_text) else level_text
    body: dict[str, Any] = {"name": str(values.get("name", "")).strip(), "preset": preset,
                            "level": level}  # fmt: skip
    for k in TAKES[preset]:
        v = str(values.get(k) or "")
        if k == "emails":
            body[k] = [e for e in re.split(r"[,\s]+", v.strip()) if e]
        elif v:
            body[k] = v.strip()
    return body


def _destination(body: dict[str, Any]) -> str:
    if body["preset"] == "email":
        return ", ".join(body.get("emails", [])) or "-"
    return "(hidden: " + ", ".join(k for k in SECRET_FIELDS if k in body) + ")"


def add_route_flow(screen: Any) -> FormFlow:
    """form → confirm (site, route, preset, level, destination without its secret, impact) →
    POST in a worker; a refusal reopens the form with the typed values and the API's words."""
    app, site = screen.app, screen.site_id
    view = screen.view or {}
    label = f"{view.get('name', site)} ({site})"

    def form(values: dict[str, Any], error: str | None) -> FormScreen:
        return FormScreen(f"Add an alert route to {site}", route_fields(), route_body,
                          ["secrets are masked here and never shown again: the server seals "
                           "them and lists the route masked"], values, error)  # fmt: skip

    def confirm(body: dict[str, Any]) -> ModalScreen[bool]:
        return ConfirmModal(
            f"Add alert route {body['name']} to {site}?",
            [("site", label), ("route", body["name"]), ("preset", body["preset"]),
             ("level", str(body["level"])), ("to", _destination(body))],
            f"Impact: this site's alerts at escalation level {body['level']} are also sent "
            f"by {body['preset']} to this destination (audited)",
        )  # fmt: skip

    flow: FormFlow

    def send(body: dict[str, Any], values: dict[str, Any]) -> None:
        # never the body: it holds the secret
        what = f"POST sites/{site}/alert-routes {body['name']} ({body['preset']}, level " \
               f"{body['level']})"  # fmt: skip
        call = lambda: alert_calls.add_route(screen.client, None, site, body)  # noqa: E731
        screen._worker(flow, what, call, values)

    flow = FormFlow(app, form, confirm, send)
    return flow


def remove_route(screen: Any) -> None:
    """The route under the cursor, after a confirm naming site, route, target and impact; the
    API's refusal (an auditor's 403) is a notification and the activity log, nothing changes."""
    key = screen.table.cursor_key()
    row = screen.records.get(key) if key else None
    if row is None or "route" not in row:
        screen.notify("put the cursor on an alert route row", severity="warning")
        return
    if not screen.app.mutation_allowed():
        return
    app, site, r = screen.app, screen.site_id, row["route"]
    what = f"DELETE alert-routes/{r['id']} ({r['name']} at {site})"

    def run() -> None:
        from ..app import worker_error

        try:
            alert_calls.delete_route(screen.client, r["id"])
        except Exception as e:  # noqa: BLE001
            msg = worker_error(e)
            app.call_from_thread(app.record, what, msg, False)
            app.call_from_thread(app.notify, msg, severity="error")
            return
        app.call_from_thread(app.record, what, "deleted")
        app.call_from_thread(screen.load)

    def answered(yes: bool | None) -> None:
        if yes:
            app.run_worker(run, thread=True, group="mutation")

    app.push_screen(
        ConfirmModal(
            f"Delete alert route {r['name']} at {site}?",
            [("site", site), ("route", f"{r['name']} ({r['id']})"),
             ("preset", f"{r['preset']} level {r['level']}"), ("to", str(r["target"]))],
            "Impact: this site's alerts no longer go to this destination; its queued "
            "deliveries are dead (audited)",
        ),
        answered,
    )  # fmt: skip
