"""`osiris fleet versions` and `osiris update …`: the fleet's agent versions, signed agent
releases, and rollouts site by site (issue 16 item 6).

An update is never "push this file": an admin has the server sign a release (version + NixOS
system), then an operator rolls it out to named sites — one signed ``update_agent`` order per
active appliance — and watches each appliance's state (requested, switched, healthy or
rolled_back, read from its signed evidence) before the next site.
"""

from __future__ import annotations

import click

from .. import updates as api
from .base import JSON_OPT, client_of, emit_json, emit_record, emit_table


@click.group()
def fleet() -> None:
    """The fleet at a glance: agent versions."""


@fleet.command("versions")
@JSON_OPT
@click.pass_context
def fleet_versions(ctx: click.Context, as_json: bool) -> None:
    """Each appliance's agent version and its newest update's state."""
    data = api.fleet_versions(client_of(ctx))
    if as_json:
        emit_json(data)
        return
    emit_table(api.FLEET_VERSIONS.rows(data["appliances"]), api.FLEET_VERSIONS.headers())


@click.group()
def update() -> None:
    """Agent updates: signed releases and rollouts site by site."""


@update.command("release")
@click.option("--version", "version", required=True, help="Agent version the release carries.")
@click.option("--system", required=True, help="NixOS system store path (/nix/store/…).")
@click.option("--name", default=None, help="Label (default osiris-<version>).")
@click.option("--allow-downgrade", is_flag=True,
              help="Mark the release as a way back: newer agents may move to it.")  # fmt: skip
@JSON_OPT
@click.pass_context
def update_release(ctx: click.Context, version: str, system: str, name: str | None,
                   allow_downgrade: bool, as_json: bool) -> None:  # fmt: skip
    """Admin only: have the server sign an agent release."""
    rel = api.create_release(client_of(ctx), version, system, name, allow_downgrade)
    emit_json(rel) if as_json else emit_record(rel)


@update.command("releases")
@JSON_OPT
@click.pass_context
def update_releases(ctx: click.Context, as_json: bool) -> None:
    """The signed agent releases."""
    rows = api.releases(client_of(ctx))
    if as_json:
        emit_json(rows)
        return
    emit_table([[r["version"], r["system"], "yes" if r["allow_downgrade"] else "",
                 r["issued_at"]] for r in rows],
               ["VERSION", "SYSTEM", "DOWNGRADE OK", "ISSUED"])  # fmt: skip


def _states(view: dict) -> None:
    emit_table([[a["appliance_id"], a["site_id"], a.get("hostname") or "", a["state"],
                 a["agent_version"]] for a in view["appliances"]],
               ["APPLIANCE", "SITE", "HOST", "STATE", "VERSION"])  # fmt: skip


@update.command("rollout")
@click.option("--site", "sites", multiple=True, required=True,
              help="Site id (repeat for several; roll out site by site).")  # fmt: skip
@click.option("--release", required=True, help="Release version to move the sites to.")
@click.option("--allow-downgrade", is_flag=True,
              help="Mean an older version (only if the release allows it).")  # fmt: skip
@click.option("--outside-window", is_flag=True,
              help="Do not wait for each site's maintenance window.")  # fmt: skip
@JSON_OPT
@click.pass_context
def update_rollout(ctx: click.Context, sites: tuple[str, ...], release: str,
                   allow_downgrade: bool, outside_window: bool, as_json: bool) -> None:  # fmt: skip
    """Roll a release out: one signed update order per active appliance of the sites."""
    view = api.create_rollout(client_of(ctx), release, list(sites),
                              allow_downgrade=allow_downgrade,
                              outside_window=outside_window)  # fmt: skip
    if as_json:
        emit_json(view)
        return
    click.echo(f"rollout {view['rollout_id']}: {release} to {', '.join(view['sites'])}")
    _states(view)


@update.command("rollouts")
@JSON_OPT
@click.pass_context
def update_rollouts(ctx: click.Context, as_json: bool) -> None:
    """Rollouts, newest first, with how many appliances are in each state."""
    rows = api.rollouts(client_of(ctx))
    if as_json:
        emit_json(rows)
        return

    def summary(counts: dict) -> str:
        return " ".join(f"{k}={v}" for k, v in counts.items() if v)

    emit_table([[r["rollout_id"], r["release"], ",".join(r["sites"]), summary(r["counts"]),
                 r["created_at"]] for r in rows],
               ["ROLLOUT", "RELEASE", "SITES", "STATES", "CREATED"])  # fmt: skip


@update.command("show")
@click.argument("rollout_id")
@JSON_OPT
@click.pass_context
def update_show(ctx: click.Context, rollout_id: str, as_json: bool) -> None:
    """One rollout: each appliance's state (from its signed evidence)."""
    view = api.rollout(client_of(ctx), rollout_id)
    if as_json:
        emit_json(view)
        return
    click.echo(f"rollout {view['rollout_id']}: {view['release']} to {', '.join(view['sites'])}")
    _states(view)
