"""`osiris site contact add|list|remove`: who may sign in to a clinic's portal by e-mail link.

Nothing is judged here: the API decides (a partner only for its own sites, else 404; a client
token cannot register anyone, 403; an address already registered for the site, 409). Removing
a contact ends its unused links and open sessions at once (docs/portal.md).
"""

from __future__ import annotations

from typing import Any

import click

from ..transport import seg
from .base import JSON_OPT, YES_OPT, client_of, confirm, emit_json, emit_table, show

KEYS = ("id", "site_id", "email", "name", "created_by", "created_at")


def _path(site_id: str) -> str:
    return f"/sites/{seg(site_id)}/contacts"


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in KEYS}


@click.group("contact")
def contact() -> None:
    """Portal contacts: the clinic staff who may sign in to the site's portal by e-mail link."""


@contact.command("add")
@click.argument("site_id")
@click.option("--email", required=True, help="The contact's e-mail address (the link goes there).")
@click.option("--name", help="Their name, for the sign-in mail's greeting.")
@JSON_OPT
@click.pass_context
def add(ctx: click.Context, site_id: str, email: str, name: str | None, as_json: bool) -> None:
    """Register a contact for a site's portal (audited)."""
    body: dict[str, Any] = {"email": email}
    if name:
        body["name"] = name
    show(_view(client_of(ctx).post(_path(site_id), body)["contact"]), as_json)


@contact.command("list")
@click.argument("site_id")
@JSON_OPT
@click.pass_context
def listing(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """List the site's portal contacts."""
    rows = [_view(c) for c in client_of(ctx).get(_path(site_id))["contacts"]]
    if as_json:
        emit_json(rows)
        return
    emit_table([(r["id"], r["email"], r["name"] or "-", r["created_at"], r["created_by"])
                for r in rows], ["ID", "EMAIL", "NAME", "SINCE", "BY"])  # fmt: skip


@contact.command("remove")
@click.argument("site_id")
@click.argument("contact_id")
@YES_OPT
@JSON_OPT
@click.pass_context
def remove(ctx: click.Context, site_id: str, contact_id: str, yes: bool, as_json: bool) -> None:
    """Remove a contact: their links and sessions end at once (audited)."""
    confirm(yes, f"remove portal contact {contact_id} of site {site_id} (signs them out)")
    out = client_of(ctx).delete(f"{_path(site_id)}/{seg(contact_id)}")
    show({"removed": out.get("removed")}, as_json)
