"""`osiris exception accept` and `osiris exception list`: accepted risks (HIPAA
§164.308(a)(1)(ii)(B)) — an admin accepts one host's open exception for a check until a date
at most a year ahead, as a statement the site's appliance signs (``POST
/api/v1/sites/{id}/risk-acceptances``); the acceptor is the token's name, never an option.
"""

from __future__ import annotations

import re
from typing import Any

import click

from ..transport import seg
from .base import JSON_OPT, client_of, emit_json, emit_table, one_line
from .review import recorded, waiting

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def as_time(value: str) -> str:
    """A date ``YYYY-MM-DD`` means its first instant (UTC); any other value goes to the server
    as given (it must then be a canonical time, ``2027-06-01T00:00:00.000Z``)."""
    return f"{value}T00:00:00.000Z" if _DATE.fullmatch(value) else value


@click.group()
def exception() -> None:
    """Accepted risks: accept an open exception until a date, list the accepted ones."""


@exception.command("accept")
@click.option("--site", "site_id", required=True, help="Site id.")
@click.option("--host", "host_id", required=True, help="The host whose exception is accepted.")
@click.option("--check", "check", required=True, help="The catalogue check id.")
@click.option("--reason", required=True, help="Why the risk is accepted (plain text).")
@click.option(
    "--until",
    required=True,
    metavar="TIME",
    help="When the acceptance lapses: YYYY-MM-DD or 2027-06-01T00:00:00.000Z, ≤ 1 year ahead.",
)
@click.option(
    "--opened-at",
    "opened_at",
    metavar="TIME",
    help="The time of the bundle that opened the exception (default: the episode open now).",
)
@JSON_OPT
@click.pass_context
def accept(
    ctx: click.Context,
    site_id: str,
    host_id: str,
    check: str,
    reason: str,
    until: str,
    opened_at: str | None,
    as_json: bool,
) -> None:
    """Accept the risk of a host's exception for a check until TIME (admin tokens only): a
    statement the site's appliance signs, naming your token."""
    body: dict[str, Any] = {"host_id": host_id, "check": check, "reason": reason,
                            "until": as_time(until)}  # fmt: skip
    if opened_at is not None:
        body["exception_opened_at"] = as_time(opened_at)
    answer = client_of(ctx).post(f"/sites/{seg(site_id)}/risk-acceptances", body)
    if as_json:
        emit_json(answer)
    else:
        st = answer["statement"]
        recorded(answer, f"risk accepted by {one_line(st['by'])} for {one_line(st['check'])} "
                         f"on {one_line(st['host_id'])} until {one_line(st['until'])}")  # fmt: skip


@exception.command("list")
@click.option("--site", "site_id", required=True, help="Site id.")
@JSON_OPT
@click.pass_context
def exception_list(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """List a site's signed risk acceptances, and the acceptance orders not yet signed."""
    answer = client_of(ctx).get(f"/sites/{seg(site_id)}/risk-acceptances")
    if as_json:
        emit_json(answer)
        return
    rows = [[s["host_id"], s["check"], s["until"], s["by"], s["appliance_id"], s["seq"],
             "yes" if s["matches_order"] else "NO", s["reason"]]
            for s in answer["statements"]]  # fmt: skip
    emit_table(rows, ["HOST", "CHECK", "UNTIL", "BY", "APPLIANCE", "SEQ", "ORDERED", "REASON"])
    waiting(answer["orders"], ("host_id", "check", "until", "by"))
