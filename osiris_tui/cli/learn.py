"""`osiris learning …` (alias `osiris learn`): the learning loop's patterns and the admin's
decision on each.

Nothing is judged here: the thresholds (5 outcomes, 9/10 healed, 2 sites), the bounds check of
the params and the admin-only rule are the server's (``osiris_server/learning.py``); a refusal
is its one-line error (403 → exit 4, 409 → exit 2) and nothing changes.
"""

from __future__ import annotations

import click

from ..columns import LEARNING
from .base import JSON_OPT, YES_OPT, client_of, confirm, listing, show

STATUS = click.Choice(["observing", "candidate", "rejected", "canary", "fleet", "disabled", "all"])


@click.group()
def learning() -> None:
    """The learning loop: L2 patterns across sites; approve (a signed L1 rule) or reject."""


def _list(ctx: click.Context, site_id: str | None, status: str | None, as_json: bool) -> None:
    listing(client_of(ctx).learning_candidates(site_id, status), as_json, LEARNING)


@learning.command("candidates")
@click.option("--site", "site_id", help="Only patterns with evidence from this site.")
@click.option("--status", type=STATUS, help="Only this status (default: all but observing).")
@JSON_OPT
@click.pass_context
def learning_candidates(
    ctx: click.Context, site_id: str | None, status: str | None, as_json: bool
) -> None:
    """List learned patterns: check, runbook, L2 healed as k/n, sites, status."""
    _list(ctx, site_id, status, as_json)


@learning.command("list", hidden=True)
@click.option("--site", "site_id", help="Only patterns with evidence from this site.")
@click.option("--status", type=STATUS, help="Only this status (default: all but observing).")
@JSON_OPT
@click.pass_context
def learning_list(
    ctx: click.Context, site_id: str | None, status: str | None, as_json: bool
) -> None:
    """The former name of `candidates`."""
    _list(ctx, site_id, status, as_json)


@learning.command("show")
@click.argument("candidate_id")
@JSON_OPT
@click.pass_context
def learning_show(ctx: click.Context, candidate_id: str, as_json: bool) -> None:
    """One pattern: its rule, the thresholds and the evidence bundles behind it."""
    show(client_of(ctx).learning_candidate(candidate_id), as_json)


@learning.command("approve")
@click.argument("candidate_id")
@click.option("--canary-site", "canary_sites", multiple=True, help="A canary site (repeatable).")
@click.option("--canary-percent", type=click.IntRange(1, 100),
              help="Or this share of all sites (default 10 %).")  # fmt: skip
@click.option("--soak", "soak_s", type=click.IntRange(0, 90 * 86400),
              help="Seconds in the canary with no failure before the fleet (86400).")  # fmt: skip
@YES_OPT
@JSON_OPT
@click.pass_context
def learning_approve(
    ctx: click.Context,
    candidate_id: str,
    canary_sites: tuple[str, ...],
    canary_percent: int | None,
    soak_s: int | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Admin only: sign the candidate as an L1 rule for the canary sites, then the fleet."""
    confirm(yes, f"approve {candidate_id}: a signed L1 rule on clinic hosts")
    out = client_of(ctx).learning_approve(
        candidate_id, canary_sites=list(canary_sites), canary_percent=canary_percent, soak_s=soak_s
    )
    show(out, as_json)


@learning.command("reject")
@click.argument("candidate_id")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@JSON_OPT
@click.pass_context
def learning_reject(ctx: click.Context, candidate_id: str, reason: str, as_json: bool) -> None:
    """Admin only: reject a pattern, with a reason; it never becomes a rule."""
    show(client_of(ctx).learning_reject(candidate_id, reason), as_json)
