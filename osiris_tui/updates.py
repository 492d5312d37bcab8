"""The agent-update endpoints (issue 16 item 6) as calls on a :class:`~osiris_tui.client.Client`.

Why beside the client, not inside it: these six calls are one feature's (releases, rollouts,
the fleet's versions), used by `osiris fleet`/`osiris update` and the console's fleet-versions
screen; they go through the client's own ``get``/``post`` (its retry rule and error tree), so
behaviour is the client's; only the file is separate.
"""

from __future__ import annotations

from typing import Any

from .client import Client
from .columns import Column, cols
from .transport import seg as _seg

# The states of one appliance's update, in the order an update moves through them (the
# server's api/updates.py STATES); the console colours the last four.
STATES = ("pending", "delivered", "deferred", "requested", "switched", "healthy",
          "rolled_back", "refused", "failed", "expired")  # fmt: skip


_BAD = {"rolled_back": "bold red", "refused": "red", "failed": "bold red", "expired": "yellow"}


def _update(a: dict[str, Any], key: str) -> str:
    return str((a.get("update") or {}).get(key) or "-")


# `osiris fleet versions` and the console's fleet-versions screen (one record: a dict of
# GET /fleet/versions's "appliances")
FLEET_VERSIONS = cols(
    "fleet versions",
    Column("appliance", "APPLIANCE", lambda a: a["appliance_id"]),
    Column("site", "SITE", lambda a: a["site_id"]),
    Column("host", "HOST", lambda a: a.get("hostname") or "-"),
    Column("version", "VERSION", lambda a: a["agent_version"], style=lambda a: "bold"),
    Column("update", "UPDATE", lambda a: _update(a, "release")),
    Column(
        "state",
        "STATE",
        lambda a: _update(a, "state"),
        style=lambda a: _BAD.get(_update(a, "state"), ""),
    ),  # fmt: skip
    Column("seen", "LAST SEEN", lambda a: a.get("last_seen_at") or "-"),
)


def fleet_versions(c: Client) -> dict[str, Any]:
    """``{"appliances": [...], "versions": {version: count}}``."""
    return dict(c.get("/fleet/versions"))


def releases(c: Client) -> list[dict[str, Any]]:
    return list(c.get("/releases")["releases"])


def create_release(
    c: Client, version: str, system: str, name: str | None = None, allow_downgrade: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {"version": version, "system": system}
    if name:
        body["name"] = name
    if allow_downgrade:
        body["allow_downgrade"] = True
    return dict(c.post("/releases", body))


def rollouts(c: Client) -> list[dict[str, Any]]:
    return list(c.get("/rollouts")["rollouts"])


def rollout(c: Client, rollout_id: str) -> dict[str, Any]:
    return dict(c.get(f"/rollouts/{_seg(rollout_id)}"))


def create_rollout(
    c: Client, release: str, sites: list[str], *, allow_downgrade: bool = False,
    outside_window: bool = False,
) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"release": release, "sites": sites}
    if allow_downgrade:
        body["allow_downgrade"] = True
    if outside_window:
        body["outside_window"] = True
    return dict(c.post("/rollouts", body))
