"""What an order may point at: the hosts an appliance has at its site, each with its catalogue
platform, and the runbooks that apply to them — judged before anything is signed or queued.

Why on the server: it is the authority that signs. An order for a host the appliance has no
credential for (``--host dc99``) used to be signed and queued, and the agent then reported a
phantom host forever; a runbook for the wrong platform failed on the host, later, at 2 a.m.
Refusing here means the CLI and the console only have to show the answer, and the answer says
what to type instead (the site's hosts, the nearest runbook id, the runbooks for that platform).

A host is a target when the site has a credential for it (its kind gives the platform, as the
agent maps it: winrm → windows, ssh → linux, local → nixos), or when it is the appliance itself
(its own id, platform nixos — the agent always knows itself).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from osiris_core.report import PLATFORM_OF_KIND
from osiris_server.db import credentials as db_creds
from osiris_server.http import bad_request

if TYPE_CHECKING:
    from osiris_server.app import App

# The agent's own mapping (osiris_agent.scanner.PLATFORM_OF_KIND) over the server's credential
# kinds, kept once in osiris_core.report (the packet builder and the portal read it too)
APPLIANCE_PLATFORM = "nixos"
MAX_LISTED = 12  # a message names at most this many hosts or runbooks


def did_you_mean(word: str, choices: Iterable[str]) -> list[str]:
    """Nearest spellings of ``word`` among ``choices`` (case-insensitive), best first."""
    by_lower: dict[str, str] = {}
    for c in choices:
        by_lower.setdefault(c.lower(), c)
    scored = sorted(
        ((difflib.SequenceMatcher(None, word.lower(), c).ratio(), c) for c in by_lower),
        key=lambda x: (-x[0], x[1]),
    )
    if not scored or scored[0][0] < 0.6:
        return []
    best = scored[0][0]  # only the near-best: "LIN-FW-001", not every LIN-*-001 as well
    return [by_lower[c] for r, c in scored[:3] if r >= max(0.6, best - 0.1)]


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f", … ({len(items)} in all)" if len(items) > MAX_LISTED else "")


def site_hosts(app: App, site_id: str, appliance_id: str) -> dict[str, tuple[str, str]]:
    """host id → (platform, how it is reached) for what this appliance can act on."""
    hosts = {
        c["host_id"]: (PLATFORM_OF_KIND.get(c["kind"], c["kind"]), f"{c['kind']} credential")
        for c in db_creds.for_site(app.db, site_id)
    }
    hosts[appliance_id] = (APPLIANCE_PLATFORM, "this appliance")
    return hosts


def check_host(app: App, site_id: str, appliance_id: str, host_id: str) -> tuple[str, str]:
    """(platform, how) of ``host_id``, or 400 ``E_NO_HOST`` naming the site's hosts."""
    hosts = site_hosts(app, site_id, appliance_id)
    if host_id in hosts:
        return hosts[host_id]
    clinic = sorted(h for h in hosts if h != appliance_id)
    near = did_you_mean(host_id, hosts)
    msg = f'no host "{host_id}" at site {site_id}'
    if near:
        msg += f"; did you mean {' or '.join(near)}?"
    if clinic:
        msg += f"; hosts: {_listed(clinic)} (or {appliance_id}, the appliance itself)"
    else:
        msg += (
            f"; the site has no host credentials yet (only {appliance_id}, the appliance "
            f"itself): add one with osiris cred add --site {site_id} --host {host_id} …"
        )
    raise bad_request(msg, "E_NO_HOST")


def check_runbook(runbooks: Mapping[str, Any], runbook_id: object) -> Any:
    """The catalogue runbook named ``runbook_id``, or 400 ``E_NO_RUNBOOK`` with the nearest id."""
    rb = runbooks.get(runbook_id) if isinstance(runbook_id, str) else None
    if rb is not None:
        return rb
    if not isinstance(runbook_id, str) or not runbook_id:
        raise bad_request(
            "run_runbook needs params.runbook_id, a catalogue runbook id "
            "(osiris runbook list shows them)",
            "E_NO_RUNBOOK",
        )
    raise bad_request(unknown_runbook(runbook_id, runbooks), "E_NO_RUNBOOK")


def unknown_runbook(runbook_id: str, runbooks: Iterable[str]) -> str:
    """``runbook "LIN-FW-01" not found; did you mean LIN-FW-001?`` (orders, params, toggles)."""
    near = did_you_mean(runbook_id, runbooks)
    hint = f"did you mean {' or '.join(near)}?" if near else "osiris runbook list shows them"
    return f'runbook "{runbook_id[:80]}" not found; {hint}'


def check_platform(
    runbooks: Mapping[str, Any], rb: Any, host_id: str, platform: str, how: str
) -> None:
    """400 ``E_PLATFORM`` when ``rb`` is for another platform than the host, naming the
    runbooks for the host's platform that check the same thing (else the same category)."""
    if rb.platform == platform:
        return
    same = sorted(r.id for r in runbooks.values() if r.platform == platform and r.check == rb.check)
    if not same:
        same = sorted(
            r.id for r in runbooks.values() if r.platform == platform and r.category == rb.category
        )
    msg = f"runbook {rb.id} is for {rb.platform} hosts, and {host_id} is {platform} ({how})"
    msg += f"; for {host_id} try {_listed(same)}" if same else f"; no {platform} runbook does that"
    raise bad_request(msg, "E_PLATFORM")
