"""`osiris site hold|unhold|holds`: legal hold per site (the server prunes nothing of a held site).

Nothing is judged here: the API decides (admin only for hold/unhold: anyone else is its 403,
exit 4; an empty reason is its 400, exit 2; a site already held is its 409). The server audits
every hold and release (who, when, why); `osiris site holds` shows the holds this token may see.
"""

from __future__ import annotations

from typing import Any

import click

from ..transport import seg
from .base import JSON_OPT, client_of, emit_json, emit_table, show

HOLD_KEYS = ("site_id", "held", "reason", "held_by", "held_at")


def _path(site_id: str) -> str:
    return f"/sites/{seg(site_id)}/legal-hold"


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in HOLD_KEYS}


@click.command("hold")
@click.argument("site_id")
@click.option("--reason", required=True, help="Why the site's evidence must be kept (audited).")
@JSON_OPT
@click.pass_context
def hold(ctx: click.Context, site_id: str, reason: str, as_json: bool) -> None:
    """Place a legal hold on a site (admin only): retention prunes nothing of it."""
    show(_view(client_of(ctx).post(_path(site_id), {"reason": reason})), as_json)


@click.command("unhold")
@click.argument("site_id")
@JSON_OPT
@click.pass_context
def unhold(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """Release a site's legal hold (admin only; audited)."""
    out = client_of(ctx).delete(_path(site_id))
    show({**_view(out), "released": out.get("released")}, as_json)


@click.command("holds")
@JSON_OPT
@click.pass_context
def holds(ctx: click.Context, as_json: bool) -> None:
    """List the sites under legal hold (who placed each, when, why)."""
    rows = [_view(h) for h in client_of(ctx).get("/legal-holds")["holds"]]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        [(r["site_id"], r["held_at"], r["held_by"], r["reason"]) for r in rows],
        ["SITE", "SINCE", "BY", "REASON"],
    )


COMMANDS = (hold, unhold, holds)
