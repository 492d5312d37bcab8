"""`osiris packet review` and `osiris packet reviews`: the reviewer's sign-off of a month
(HIPAA §164.308(a)(1)(ii)(D)), recorded as a statement the site's appliance signs.

Why here and not in ``packet.py``: building a packet reads evidence; a review *adds* evidence
through the server (``POST /api/v1/sites/{id}/reviews``). The reviewer is the token's name —
this command cannot choose it — and the packet's SHA-256 is computed here from the file the
reviewer actually read, so the statement names exactly that zip.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click

from ..transport import seg
from .base import JSON_OPT, client_of, emit_json, emit_table, one_line

SITE_HELP = "Site id."


def file_sha256(path: Path) -> str:
    """Lowercase hex SHA-256 of a file, read in 1 MiB pieces (a packet may be large)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def recorded(answer: dict[str, Any], what: str) -> None:
    """One line per order: the statement is signed when that appliance next checks in."""
    for o in answer["orders"]:
        click.echo(f"{what}: order {one_line(o['order_id'])} for appliance "
                   f"{one_line(o['appliance_id'])} (signed at its next check-in)")  # fmt: skip


def waiting(orders: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """Orders not yet answered by a signed statement, after the table (stderr: not data)."""
    for o in orders:
        said = ", ".join(f"{k} {one_line(o['params'].get(k))}" for k in fields)
        click.echo(f"not yet signed: order {one_line(o['id'])} ({one_line(o['status'])}) to "
                   f"{one_line(o['appliance_id'])}: {said}", err=True)  # fmt: skip


@click.command("review")
@click.option("--site", "site_id", required=True, help=SITE_HELP)
@click.option("--month", required=True, metavar="YYYY-MM", help="The month reviewed.")
@click.option("--note", default="", help="What the review found (plain text, ≤ 2000 chars).")
@click.option(
    "--packet",
    "packet_file",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="The packet zip reviewed; its SHA-256 (computed here) goes into the statement.",
)
@JSON_OPT
@click.pass_context
def review(
    ctx: click.Context,
    site_id: str,
    month: str,
    note: str,
    packet_file: Path | None,
    as_json: bool,
) -> None:
    """Record that you reviewed a site's month: a statement the site's appliance signs, naming
    your token as the reviewer, shown in the next packet."""
    body: dict[str, Any] = {"month": month, "note": note}
    if packet_file is not None:
        body["packet_sha256"] = file_sha256(packet_file)
    answer = client_of(ctx).post(f"/sites/{seg(site_id)}/reviews", body)
    if as_json:
        emit_json(answer)
    else:
        st = answer["statement"]
        recorded(answer, f"review of {one_line(st['month'])} by {one_line(st['reviewer'])}")


@click.command("reviews")
@click.option("--site", "site_id", required=True, help=SITE_HELP)
@JSON_OPT
@click.pass_context
def reviews(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """List a site's signed activity reviews, and the review orders not yet signed."""
    answer = client_of(ctx).get(f"/sites/{seg(site_id)}/reviews")
    if as_json:
        emit_json(answer)
        return
    rows = [[s["month"], s["reviewer"], s["reviewed_at"], s["appliance_id"], s["seq"],
             "yes" if s["matches_order"] else "NO", s["note"]]
            for s in answer["statements"]]  # fmt: skip
    emit_table(rows, ["MONTH", "REVIEWER", "REVIEWED_AT", "APPLIANCE", "SEQ", "ORDERED", "NOTE"])
    waiting(answer["orders"], ("month", "reviewer"))
