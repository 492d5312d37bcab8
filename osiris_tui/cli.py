"""`osiris`: the operator CLI and console.

Conventions (docs/console.md): `osiris <noun> <verb>`; stdout carries only data, diagnostics go
to stderr as one line `osiris: error: …`; `--json` on every listing and show; exit codes
(``osiris_core.errors.ExitCode``, shared with osiris-agent and osiris-server through
``osiris_core.cli_base``) 0 ok, 1 the thing checked is bad, 2 usage/input, 3 server unreachable,
4 auth refused, 5 an unexpected error (one line; ``--debug`` / ``OSIRIS_DEBUG=1`` adds the
traceback). Passwords come
only from a hidden prompt or `--password-stdin`, never from argv (argv is visible in `ps`).
Textual is imported only by `osiris tui`.

Everything printed that came from the server (so, ultimately, from an appliance or a host) goes
through `fmt.safe` / `fmt.safe_json`: no terminal control sequence in a hostname, an incident
summary or an error message reaches the operator's terminal (docs/console.md).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import click

from osiris_core.cli_base import OsirisGroup, write_error
from osiris_core.cli_base import fail as _fail
from osiris_core.errors import ExitCode

from .client import (
    Client,
    UsageError,
    as_json_list,
)
from .fmt import safe, safe_json, safe_text

DEFAULT_STATE_DIR = "/var/lib/osiris"


PROG = "osiris"


def fail(message: str, code: ExitCode) -> NoReturn:
    """The one error writer (``osiris_core.cli_base``): ``osiris: error: …`` and ``code``."""
    _fail(message, code, PROG)


def _one_line(text: object) -> str:
    """One printable line: control characters escaped (``fmt.safe``), whitespace collapsed."""
    return " ".join(safe(text).split())


@click.group(cls=OsirisGroup, prog=PROG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="osiris")
@click.option("--server", metavar="URL", help="Central Command URL (or OSIRIS_SERVER).")
@click.option(
    "--token",
    metavar="TOKEN",
    help="Operator token osk_…; arguments are visible to other users (ps), so prefer "
    "OSIRIS_TOKEN or a 0600 profile file.",
)
@click.option("--profile", metavar="NAME", help="Profile in ~/.config/osiris/profiles.toml.")
@click.pass_context
def main(ctx: click.Context, server: str | None, token: str | None, profile: str | None) -> None:
    """Operate Osiris: sites, appliances, evidence and the console."""
    ctx.obj = {"server": server, "token": token, "profile": profile, "client": None}


def client_of(ctx: click.Context) -> Client:
    root = ctx.find_root().obj or {}
    if root.get("client") is None:
        root["client"] = Client.from_config(
            root.get("server"), root.get("token"), root.get("profile")
        )
        ctx.find_root().call_on_close(root["client"].close)
    return root["client"]


# ---------------------------------------------------------------- output helpers


def emit_json(data: Any) -> None:
    click.echo(safe_json(data, indent=2, sort_keys=True, ensure_ascii=False))


def emit_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A rich table on a TTY; plain tab-separated lines otherwise (easy to cut/awk). Cells are
    ``fmt.safe``: remote text cannot carry a terminal control sequence."""
    cells = [[safe(v) for v in r] for r in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        t = Table(show_edge=False, header_style="bold", pad_edge=False)
        for h in headers:
            t.add_column(h)
        for r in cells:
            t.add_row(*(Text(c) for c in r))
        Console(no_color="NO_COLOR" in os.environ).print(t)
        return
    click.echo("\t".join(headers))
    for r in cells:
        click.echo("\t".join(_one_line(c) for c in r))


def emit_record(data: dict[str, Any]) -> None:
    for k in sorted(data):
        v = data[k]
        if isinstance(v, (dict, list)):
            v = json.dumps(v, sort_keys=True)
        click.echo(f"{_one_line(k)}: {'' if v is None else _one_line(v)}")


def listing(
    items: Iterable[Any], as_json: bool, headers: Sequence[str], row: Callable[[Any], Sequence[Any]]
) -> None:
    items = list(items)
    if as_json:
        emit_json(as_json_list(items))
    else:
        emit_table([row(i) for i in items], headers)


def show(item: Any, as_json: bool) -> None:
    data = item.as_json() if hasattr(item, "as_json") else item
    if as_json:
        emit_json(data)
    else:
        emit_record(data)


def confirm(yes: bool, what: str) -> None:
    """Destructive actions: `--yes`, or an interactive confirmation on a TTY; never silent."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"{what}: refusing without --yes (no terminal to confirm on)", ExitCode.USAGE)
    if not click.confirm(f"{_one_line(what)}?", default=False, err=True):
        fail("aborted", ExitCode.USAGE)


def read_secret(from_stdin: bool, label: str = "Password") -> str:
    """A secret from stdin (`--password-stdin`) or a hidden, confirmed prompt on a TTY."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            fail("--password-stdin: nothing on stdin", ExitCode.USAGE)
        return value
    if not sys.stdin.isatty():
        fail(
            f"{label.lower()} needed: use --password-stdin (no terminal to prompt on)",
            ExitCode.USAGE,
        )
    return click.prompt(label, hide_input=True, confirmation_prompt=True, err=True)


JSON_OPT = click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys).")
YES_OPT = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


# ---------------------------------------------------------------- site


@main.group()
def site() -> None:
    """Sites (clinics): list, show, add, rename."""


@site.command("list")
@JSON_OPT
@click.pass_context
def site_list(ctx: click.Context, as_json: bool) -> None:
    """List the sites this token may see."""
    listing(
        client_of(ctx).sites(),
        as_json,
        ["ID", "NAME", "PARTNER", "INTERVAL"],
        lambda s: [s.id, s.name, s.partner_id or "-", f"{s.checkin_interval_s}s"],
    )


@site.command("show")
@click.argument("site_id")
@JSON_OPT
@click.pass_context
def site_show(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """Show one site."""
    show(client_of(ctx).site(site_id), as_json)


@site.command("add")
@click.argument("name")
@click.option("--id", "site_id", help="Choose the site id (default: generated).")
@click.option("--partner", help="Partner (reseller) id.")
@click.option("--interval", type=click.IntRange(10, 3600), help="Check-in interval, seconds.")
@JSON_OPT
@click.pass_context
def site_add(
    ctx: click.Context,
    name: str,
    site_id: str | None,
    partner: str | None,
    interval: int | None,
    as_json: bool,
) -> None:
    """Create a site."""
    show(client_of(ctx).create_site(name, site_id, partner, interval), as_json)


@site.command("rename")
@click.argument("site_id")
@click.argument("name")
@JSON_OPT
@click.pass_context
def site_rename(ctx: click.Context, site_id: str, name: str, as_json: bool) -> None:
    """Rename a site."""
    show(client_of(ctx).update_site(site_id, name=name), as_json)


# ---------------------------------------------------------------- appliance


def _appliance_row(a: Any) -> list[Any]:
    ok, total = a.compliance
    return [
        a.id,
        a.site_id,
        a.hostname,
        a.state() + (" ⚠ quarantined" if a.is_quarantined else ""),
        a.last_seen_at or "never",
        a.drift_count,
        f"{ok}/{total}" if total else "-",
    ]


@main.group()
def appliance() -> None:
    """Appliances: list, show, revoke."""


@appliance.command("list")
@click.option("--site", "site_id", help="Only this site.")
@JSON_OPT
@click.pass_context
def appliance_list(ctx: click.Context, site_id: str | None, as_json: bool) -> None:
    """List appliances with online/stale/offline status and drift counts."""
    listing(
        client_of(ctx).appliances(site_id),
        as_json,
        ["ID", "SITE", "HOSTNAME", "STATUS", "LAST SEEN", "DRIFT", "COMPLIANT"],
        _appliance_row,
    )


@appliance.command("show")
@click.argument("appliance_id")
@JSON_OPT
@click.pass_context
def appliance_show(ctx: click.Context, appliance_id: str, as_json: bool) -> None:
    """Show one appliance and its latest check results."""
    show(client_of(ctx).appliance(appliance_id), as_json)


@appliance.command("drift")
@click.argument("appliance_id")
@click.option(
    "--window", type=click.IntRange(1, 20000), default=2000, show_default=True,
    help="Replay at most the newest N bundles of the chain.",
)  # fmt: skip
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when any pair is in drift or error.")
@JSON_OPT
@click.pass_context
def appliance_drift(
    ctx: click.Context, appliance_id: str, window: int, fail_on_drift: bool, as_json: bool
) -> None:
    """Per host and check: state, since when, healing attempts — replayed from the evidence."""
    from .drift import drift_rows, fetch_chain_tail, short

    c = client_of(ctx)
    a = c.appliance(appliance_id)
    ev, start = fetch_chain_tail(c, a.site_id, a.id, (a.status or {}).get("seq"), window)
    rows = drift_rows(ev, a.checks, window_start_seq=start)
    listing(
        rows,
        as_json,
        ["HOST", "CHECK", "STATE", "SINCE", "ATTEMPTS", "LAST", "OBSERVED", "EXPECTED"],
        lambda d: [
            d.host_id,
            d.check,
            d.state,
            ("" if d.since_exact else "≤") + (d.since or "-"),
            d.attempts,
            f"{d.last_tier or '-'} {d.last_outcome or '-'}",
            short(d.observed),
            short(d.expected),
        ],  # fmt: skip
    )
    if fail_on_drift and any(d.state in ("drift", "error") for d in rows):
        sys.exit(ExitCode.BAD)


@appliance.command("confirm")
@click.argument("appliance_id")
@YES_OPT
@click.pass_context
def appliance_confirm(ctx: click.Context, appliance_id: str, yes: bool) -> None:
    """Admin: lift an appliance's quarantine so it receives its site's credentials.

    An appliance enrolled with a claim code an operator or partner made is quarantined: it
    checks in and sends evidence but gets no credential. Confirm only a box you know is the
    clinic's (compare its hostname, MAC and enrolment source in `osiris appliance show`).
    """
    c = client_of(ctx)
    a = c.appliance(appliance_id)
    confirm(
        yes,
        f"Confirm appliance {safe(a.hostname)} ({safe(a.id)}) of site {safe(a.site_id)}: from "
        "its next check-in it receives every credential of that site",
    )
    emit_json(c.confirm_appliance(appliance_id))


@appliance.command("revoke")
@click.argument("appliance_id")
@YES_OPT
@click.pass_context
def appliance_revoke(ctx: click.Context, appliance_id: str, yes: bool) -> None:
    """Revoke an appliance's token (it can no longer check in)."""
    confirm(yes, f"Revoke appliance {appliance_id}; it stops checking in and healing")
    emit_json(client_of(ctx).revoke_appliance(appliance_id))


# ---------------------------------------------------------------- credentials


@main.group()
def cred() -> None:
    """Credentials of a site's hosts: list, add, rotate, rm, reveal (admin)."""


def _cred_row(c: Any) -> list[Any]:
    return [c.id, c.host_id, c.kind, f"{c.address}:{c.port}", c.username, c.secret, c.version]


@cred.command("list")
@click.option("--site", "site_id", required=True, help="Site id.")
@JSON_OPT
@click.pass_context
def cred_list(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """List a site's credentials (secrets masked)."""
    listing(
        client_of(ctx).credentials(site_id),
        as_json,
        ["ID", "HOST", "KIND", "ADDRESS", "USER", "SECRET", "VERSION"],
        _cred_row,
    )


@cred.command("show")
@click.option("--site", "site_id", required=True, help="Site id.")
@click.argument("cred_id")
@JSON_OPT
@click.pass_context
def cred_show(ctx: click.Context, site_id: str, cred_id: str, as_json: bool) -> None:
    """Show one credential (secret masked)."""
    show(client_of(ctx).credential(site_id, cred_id), as_json)


@cred.command("add")
@click.option("--site", "site_id", required=True, help="Site id.")
@click.option("--host", "host_id", required=True, help="Host id the agent will know it by.")
@click.option(
    "--kind",
    type=click.Choice(["winrm", "ssh_password", "ssh_key", "local"]),
    required=True,
    help="Transport and secret type.",
)
@click.option("--address", required=True, help="Host name or IP address.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default per kind).")
@click.option("--username", default="", help="Login name.")
@click.option("--password-stdin", is_flag=True, help="Read the password (one line) from stdin.")
@click.option(
    "--key-file", type=click.File("r"), help="Private key file (ssh_key); '-' reads stdin."
)
@click.option(
    "--fingerprint", "fingerprints", multiple=True, help="Pinned SSH host key (SHA256:…)."
)
@click.option("--lab", is_flag=True, help="A lab simulator host.")
@JSON_OPT
@click.pass_context
def cred_add(
    ctx: click.Context,
    site_id: str,
    host_id: str,
    kind: str,
    address: str,
    port: int | None,
    username: str,
    password_stdin: bool,
    key_file: Any,
    fingerprints: tuple[str, ...],
    lab: bool,
    as_json: bool,
) -> None:
    """Add a credential; the password is prompted for (hidden) or read from stdin."""
    fields: dict[str, Any] = {"host_id": host_id, "kind": kind, "address": address}
    if port:
        fields["port"] = port
    if username:
        fields["username"] = username
    if fingerprints:
        fields["host_key_fingerprints"] = list(fingerprints)
    if lab:
        fields["lab"] = True
    if kind in ("winrm", "ssh_password"):
        fields["password"] = read_secret(password_stdin)
    elif kind == "ssh_key":
        if key_file is None:
            fail("an ssh_key credential needs --key-file", ExitCode.USAGE)
        fields["private_key"] = key_file.read()
    show(client_of(ctx).add_credential(site_id, fields), as_json)


@cred.command("rotate")
@click.option("--site", "site_id", required=True, help="Site id.")
@click.argument("cred_id")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@click.option("--key-file", type=click.File("r"), help="New private key file (ssh_key).")
@YES_OPT
@JSON_OPT
@click.pass_context
def cred_rotate(
    ctx: click.Context,
    site_id: str,
    cred_id: str,
    password_stdin: bool,
    key_file: Any,
    yes: bool,
    as_json: bool,
) -> None:
    """Replace a credential's secret (effective at each appliance's next check-in)."""
    c = client_of(ctx)
    current = c.credential(site_id, cred_id)
    if current.kind == "ssh_key":
        if key_file is None:
            fail("rotating an ssh_key credential needs --key-file", ExitCode.USAGE)
        body = {"private_key": key_file.read()}
    elif current.kind == "local":
        fail("a local credential has no secret to rotate", ExitCode.USAGE)
    else:
        body = {"password": read_secret(password_stdin, "New password")}
    confirm(yes, f"Rotate the secret of {current.host_id} ({cred_id}) at site {site_id}")
    show(c.update_credential(site_id, cred_id, body), as_json)


@cred.command("rm")
@click.option("--site", "site_id", required=True, help="Site id.")
@click.argument("cred_id")
@YES_OPT
@click.pass_context
def cred_rm(ctx: click.Context, site_id: str, cred_id: str, yes: bool) -> None:
    """Delete a credential (the host is no longer checked or healed)."""
    confirm(yes, f"Delete credential {cred_id} of site {site_id}; its host goes unmonitored")
    emit_json(client_of(ctx).delete_credential(site_id, cred_id))


@cred.command("reveal")
@click.option("--site", "site_id", required=True, help="Site id.")
@click.argument("cred_id")
@YES_OPT
@click.pass_context
def cred_reveal(ctx: click.Context, site_id: str, cred_id: str, yes: bool) -> None:
    """Admin only: print the secret (the server audits the reveal)."""
    confirm(yes, f"Reveal the secret of {cred_id} (this is audited)")
    emit_json(client_of(ctx).reveal_credential(site_id, cred_id))


# ---------------------------------------------------------------- runbooks


def _catalog_runbooks() -> dict[str, Any]:
    try:
        from osiris_core.catalog import load_catalog

        return dict(load_catalog().runbooks)
    except Exception:  # noqa: BLE001 - names/flags are decoration; the server is the truth
        return {}


def _scope(site_id: str | None, appliance_id: str | None) -> tuple[str, str]:
    if bool(site_id) == bool(appliance_id):
        fail("give exactly one of --site or --appliance", ExitCode.USAGE)
    return ("site", site_id) if site_id else ("appliance", appliance_id)  # type: ignore[return-value]


SCOPE_OPTS = [
    click.option("--site", "site_id", help="Site scope."),
    click.option("--appliance", "appliance_id", help="Appliance scope (overrides the site)."),
]


def scope_opts(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(SCOPE_OPTS):
        f = opt(f)
    return f


@main.group()
def runbook() -> None:
    """Runbooks per site or appliance: toggles (list, enable, disable, reset) and parameter
    values (params, set)."""


@runbook.command("list")
@scope_opts
@JSON_OPT
@click.pass_context
def runbook_list(
    ctx: click.Context, site_id: str | None, appliance_id: str | None, as_json: bool
) -> None:
    """List runbooks with their effective state and where it comes from."""
    kind, sid = _scope(site_id, appliance_id)
    c = client_of(ctx)
    states = c.site_runbooks(sid) if kind == "site" else c.appliance_runbooks(sid)
    cat = _catalog_runbooks()

    def row(s: Any) -> list[Any]:
        rb = cat.get(s.id)
        flags = []
        if rb is not None and rb.disruptive:
            flags.append("disruptive")
        if rb is not None and rb.requires_maintenance_window:
            flags.append("window")
        source = (
            "appliance" if s.appliance is not None else "site" if s.site is not None else "default"
        )
        return [
            s.id,
            "● on" if s.enabled else "○ off",
            source,
            getattr(rb, "name", ""),
            ",".join(flags) or "-",
        ]

    listing(states, as_json, ["ID", "STATE", "SET BY", "NAME", "FLAGS"], row)


def _toggle(
    ctx: click.Context,
    ids: tuple[str, ...],
    value: bool | None,
    site_id,
    appliance_id,
    yes,
    as_json,
) -> None:
    kind, sid = _scope(site_id, appliance_id)
    if value is False:
        confirm(
            yes,
            f"Disable {', '.join(ids)} at {kind} {sid}; drift these runbooks heal will only be "
            "reported, not fixed",
        )
    c = client_of(ctx)
    changes = {rb: value for rb in ids}
    if kind == "site":
        states = c.set_site_runbooks(sid, changes)
    else:
        states = c.set_appliance_runbooks(sid, changes)
    wanted = set(ids)
    listing(
        [s for s in states if s.id in wanted],
        as_json,
        ["ID", "STATE"],
        lambda s: [s.id, "● on" if s.enabled else "○ off"],
    )


@runbook.command("enable")
@click.argument("runbook_ids", nargs=-1, required=True)
@scope_opts
@JSON_OPT
@click.pass_context
def runbook_enable(ctx, runbook_ids, site_id, appliance_id, as_json) -> None:  # noqa: ANN001
    """Enable runbooks at a site or appliance."""
    _toggle(ctx, runbook_ids, True, site_id, appliance_id, True, as_json)


@runbook.command("disable")
@click.argument("runbook_ids", nargs=-1, required=True)
@scope_opts
@YES_OPT
@JSON_OPT
@click.pass_context
def runbook_disable(ctx, runbook_ids, site_id, appliance_id, yes, as_json) -> None:  # noqa: ANN001
    """Disable runbooks at a site or appliance (confirmation required)."""
    _toggle(ctx, runbook_ids, False, site_id, appliance_id, yes, as_json)


@runbook.command("reset")
@click.argument("runbook_ids", nargs=-1, required=True)
@scope_opts
@JSON_OPT
@click.pass_context
def runbook_reset(ctx, runbook_ids, site_id, appliance_id, as_json) -> None:  # noqa: ANN001
    """Clear overrides so the runbooks inherit from the site or the catalogue default."""
    _toggle(ctx, runbook_ids, None, site_id, appliance_id, True, as_json)


# ---------------------------------------------------------------- runbook parameters

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def convert_param(name: str, spec: dict[str, Any] | None, raw: str) -> Any:
    """``NAME=VALUE`` text → the JSON value the schema's type wants; ``UsageError`` otherwise.

    Why here and not on the server: argv is text, and ``15`` must travel as the integer 15 (the
    server refuses a string for an int parameter, rightly)."""
    if spec is None:
        raise UsageError(f"unknown parameter {name}")
    typ = spec.get("type")
    if typ == "int":
        try:
            return int(raw.strip(), 10)
        except ValueError:
            raise UsageError(f"{name} must be an integer, not {raw!r}") from None
    if typ == "bool":
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise UsageError(f"{name} must be true or false, not {raw!r}")
    return raw


def _param_rows(view: dict[str, Any]) -> list[list[Any]]:
    rows = []
    own = view.get("appliance") or {}
    site = view.get("site") or {}
    for name, spec in sorted((view.get("schema") or {}).items()):
        source = "appliance" if name in own else "site" if name in site else "default"
        value = view.get("effective", {}).get(name)
        rows.append([name, spec.get("type", ""), json.dumps(value), source,
                     json.dumps(spec.get("default")), spec.get("description", "")])  # fmt: skip
    return rows


PARAM_HEADERS = ["NAME", "TYPE", "VALUE", "SET BY", "DEFAULT", "DESCRIPTION"]


def _show_params(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(view)
    else:
        emit_table(_param_rows(view), PARAM_HEADERS)


@runbook.command("params")
@click.argument("site_id")
@click.argument("runbook_id")
@click.option("--appliance", "appliance_id", help="Show one appliance's values (it wins).")
@JSON_OPT
@click.pass_context
def runbook_params(
    ctx: click.Context, site_id: str, runbook_id: str, appliance_id: str | None, as_json: bool
) -> None:
    """Show a runbook's parameters at a site: value, where it is set, default, meaning."""
    _show_params(client_of(ctx).runbook_params(site_id, runbook_id, appliance_id), as_json)


@runbook.command("set")
@click.argument("site_id")
@click.argument("runbook_id")
@click.argument("assignments", nargs=-1, metavar="NAME=VALUE...")
@click.option("--appliance", "appliance_id", help="Set for one appliance of the site only.")
@click.option("--clear", "clear", multiple=True, metavar="NAME",
              help="Clear a value set at this scope (it inherits again); repeatable.")  # fmt: skip
@JSON_OPT
@click.pass_context
def runbook_set(
    ctx: click.Context,
    site_id: str,
    runbook_id: str,
    assignments: tuple[str, ...],
    appliance_id: str | None,
    clear: tuple[str, ...],
    as_json: bool,
) -> None:
    """Set runbook parameters (policy thresholds) for a site, e.g.
    `osiris runbook set clinic RB-WIN-PATCH-001 critical_overdue_days=15`."""
    if not assignments and not clear:
        fail("give at least one NAME=VALUE (or --clear NAME)", ExitCode.USAGE)
    c = client_of(ctx)
    schema = c.runbook_params(site_id, runbook_id, appliance_id).get("schema") or {}
    changes: dict[str, Any] = {}
    for a in assignments:
        name, sep, raw = a.partition("=")
        name = name.strip()
        if not sep or not name:
            fail(f"expected NAME=VALUE, got {a!r}", ExitCode.USAGE)
        if name not in schema:
            known = ", ".join(sorted(schema)) or "none"
            fail(f"{runbook_id} has no parameter {name} (known: {known})", ExitCode.USAGE)
        changes[name] = convert_param(name, schema[name], raw)
    for name in clear:
        if name not in schema:
            fail(f"{runbook_id} has no parameter {name}", ExitCode.USAGE)
        changes[name] = None
    _show_params(c.set_runbook_params(site_id, runbook_id, changes, appliance_id), as_json)


# ---------------------------------------------------------------- orders


@main.group()
def order() -> None:
    """Signed orders to appliances: list, show, run a runbook."""


def _order_row(o: Any) -> list[Any]:
    p = o.params or {}
    return [
        o.id,
        o.kind,
        p.get("runbook_id", ""),
        p.get("host_id", ""),
        o.status,
        o.created_at,
        o.result_outcome or "",
    ]


@order.command("list")
@click.option("--appliance", "appliance_id", required=True, help="Appliance id.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most N."
)
@JSON_OPT
@click.pass_context
def order_list(ctx: click.Context, appliance_id: str, limit: int, as_json: bool) -> None:
    """List an appliance's orders, newest first."""
    listing(
        client_of(ctx).orders(appliance_id, limit),
        as_json,
        ["ID", "KIND", "RUNBOOK", "HOST", "STATUS", "CREATED", "OUTCOME"],
        _order_row,
    )


@order.command("show")
@click.option("--appliance", "appliance_id", required=True, help="Appliance id.")
@click.argument("order_id")
@JSON_OPT
@click.pass_context
def order_show(ctx: click.Context, appliance_id: str, order_id: str, as_json: bool) -> None:
    """Show one order and its result."""
    show(client_of(ctx).order(appliance_id, order_id), as_json)


@order.command("run")
@click.option("--appliance", "appliance_id", required=True, help="Appliance id.")
@click.option("--runbook", "runbook_id", required=True, help="Catalogue runbook id.")
@click.option("--host", "host_id", required=True, help="Host id at the site.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Runbook parameter.")
@click.option("--ttl", type=click.IntRange(1, 86400), help="Seconds before the order expires.")
@YES_OPT
@JSON_OPT
@click.pass_context
def order_run(
    ctx: click.Context,
    appliance_id: str,
    runbook_id: str,
    host_id: str,
    params: tuple[str, ...],
    ttl: int | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Queue a signed order to run one catalogue runbook on one host."""
    extra: dict[str, Any] = {}
    for p in params:
        k, sep, v = p.partition("=")
        if not sep or not k:
            fail(f"--param {p!r}: expected K=V", ExitCode.USAGE)
        extra[k] = _param_value(v)
    rb = _catalog_runbooks().get(runbook_id)
    if rb is not None and (rb.disruptive or rb.requires_maintenance_window):
        confirm(yes, f"{runbook_id} is disruptive; run it on {host_id} via {appliance_id}")
    body: dict[str, Any] = {"runbook_id": runbook_id, "host_id": host_id}
    if extra:
        body["parameters"] = extra
    show(client_of(ctx).create_order(appliance_id, "run_runbook", body, ttl_s=ttl), as_json)


def _param_value(v: str) -> Any:
    if v in ("true", "false"):
        return v == "true"
    if v.lstrip("-").isdigit():
        return int(v)
    return v


# ---------------------------------------------------------------- incidents


@main.group()
def incident() -> None:
    """Incidents reported by appliances: list, show, resolve."""


@incident.command("list")
@click.option("--site", "site_id", help="Only this site.")
@click.option("--status", type=click.Choice(["open", "resolved"]), help="Filter by status.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most N."
)
@JSON_OPT
@click.pass_context
def incident_list(
    ctx: click.Context, site_id: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """List incidents, newest first."""
    listing(
        client_of(ctx).incidents(site_id, status, limit),
        as_json,
        ["ID", "SITE", "HOST", "SEVERITY", "KIND", "STATUS", "COUNT", "SUMMARY"],
        lambda i: [i.id, i.site_id, i.host_id, i.severity, i.kind, i.status, i.count, i.summary],
    )


@incident.command("show")
@click.argument("incident_id")
@JSON_OPT
@click.pass_context
def incident_show(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """Show one incident."""
    show(client_of(ctx).incident(incident_id), as_json)


@incident.command("resolve")
@click.argument("incident_id")
@JSON_OPT
@click.pass_context
def incident_resolve(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """Mark an incident resolved."""
    show(client_of(ctx).resolve_incident(incident_id), as_json)


# ---------------------------------------------------------------- learning


@main.group()
def learn() -> None:
    """Learned-rule candidates (read-only: the server lists them; promotion is not in its API)."""


@learn.command("list")
@click.option("--site", "site_id", help="Only this site.")
@JSON_OPT
@click.pass_context
def learn_list(ctx: click.Context, site_id: str | None, as_json: bool) -> None:
    """List (check, runbook) promotion candidates with their success record, newest first."""
    listing(
        client_of(ctx).learning_candidates(site_id),
        as_json,
        ["ID", "SITE", "CHECK", "RUNBOOK", "OK", "FAILED", "RATE", "STATUS", "UPDATED"],
        lambda c: [c.id, c.site_id or "-", c.check_id, c.runbook_id, c.successes, c.failures,
                   c.success_rate, c.status, c.updated_at],
    )  # fmt: skip


# ---------------------------------------------------------------- provisioning


@main.group()
def provision() -> None:
    """Claim codes for new appliances: create (with a QR code), list, rm; MAC requests."""


@provision.command("list")
@JSON_OPT
@click.pass_context
def provision_list(ctx: click.Context, as_json: bool) -> None:
    """List claim codes (never the codes themselves): pending or claimed."""
    listing(
        client_of(ctx).provisions(),
        as_json,
        ["ID", "SITE", "STATE", "EXPIRES", "APPLIANCE"],
        lambda p: [p.id, p.site_id, p.state, p.expires_at, p.appliance_id or "-"],
    )


@provision.command("create")
@click.option("--site", "site_id", required=True, help="Site the appliance will join.")
@click.option("--ttl", type=click.IntRange(60, 30 * 86400), help="Seconds the code is valid.")
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code.")
@JSON_OPT
@click.pass_context
def provision_create(
    ctx: click.Context, site_id: str, ttl: int | None, no_qr: bool, as_json: bool
) -> None:
    """Create a single-use claim code and show it as text and as a QR code."""
    out = client_of(ctx).create_provision(site_id, ttl)
    if as_json:
        emit_json(out)
        return
    code = safe(out["code"])
    click.echo(f"claim code: {code}")
    click.echo(f"site:       {safe(out.get('site_id'))}")
    click.echo(f"expires:    {safe(out.get('expires_at'))}")
    click.echo(f"enroll:     osiris-agent enroll --server URL --claim-code {code} --state DIR")
    if not no_qr:
        from .qr import render_half_blocks

        click.echo()
        click.echo(render_half_blocks(code))


@provision.command("rm")
@click.argument("provision_id")
@YES_OPT
@click.pass_context
def provision_rm(ctx: click.Context, provision_id: str, yes: bool) -> None:
    """Withdraw an unused claim code."""
    confirm(yes, f"Withdraw claim code {provision_id}")
    emit_json(client_of(ctx).delete_provision(provision_id))


@provision.command("macs")
@JSON_OPT
@click.pass_context
def provision_macs(ctx: click.Context, as_json: bool) -> None:
    """List MAC enrollment requests with the fingerprint each appliance's console shows."""
    rows = client_of(ctx).mac_requests()
    if as_json:
        emit_json(rows)
        return
    emit_table(
        [
            [r["mac"], r["status"], r.get("requester_fingerprint") or "-", r.get("source") or "-",
             r.get("site_id") or "-", r.get("requested_at") or "-"]
            for r in rows
        ],
        ["MAC", "STATUS", "FINGERPRINT", "FROM", "SITE", "REQUESTED"],
    )  # fmt: skip


@provision.command("approve")
@click.argument("mac")
@click.option("--site", "site_id", required=True, help="Site the appliance will join.")
@click.option(
    "--fingerprint",
    required=True,
    help="The requester's full fingerprint, as the appliance's console shows it (64 hex "
    "digits); only that requester can collect the claim code.",
)
@click.option("--ttl", type=click.IntRange(60, 30 * 86400), help="Seconds the code is valid.")
@YES_OPT
@JSON_OPT
@click.pass_context
def provision_approve(
    ctx: click.Context,
    mac: str,
    site_id: str,
    fingerprint: str | None,
    ttl: int | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Approve a MAC enrollment request for a site.

    Compare the request's fingerprint (`osiris provision macs`) with the one the appliance's
    console shows before approving: only the requester holding that fingerprint's secret can
    collect the claim code.
    """
    client = client_of(ctx)
    norm = mac.strip().lower().replace("-", ":")
    want = fingerprint.strip().lower().replace("-", "").replace(":", "").replace(" ", "")
    reqs = [r for r in client.mac_requests() if r["mac"] == norm]
    match = next(
        (r for r in reqs if (r.get("requester_fingerprint") or "").replace("-", "") == want),
        None,
    )
    if match is None:
        raise click.UsageError(
            f"no request for {safe(norm)} from requester {safe(fingerprint)} "
            f"({len(reqs)} other requester(s) for that MAC); not approving"
        )
    confirm(
        yes,
        f"Approve {norm} (requester {match['requester_fingerprint']}, from "
        f"{safe(match.get('source') or '?')}) to join site {site_id}: that box will receive a "
        "claim code for that site",
    )
    out = client.approve_mac(norm, site_id, match["requester_fingerprint"], ttl)
    if as_json:
        emit_json(out)
    else:
        emit_record(out)


# ---------------------------------------------------------------- partners, tokens, audit


@main.group()
def partner() -> None:
    """Partners (resellers): list, add."""


@partner.command("list")
@JSON_OPT
@click.pass_context
def partner_list(ctx: click.Context, as_json: bool) -> None:
    """List partners."""
    listing(
        client_of(ctx).partners(),
        as_json,
        ["ID", "NAME", "CONTACT"],
        lambda p: [p.id, p.name, p.contact_email or "-"],
    )


@partner.command("add")
@click.argument("name")
@click.option("--email", help="Contact e-mail.")
@click.pass_context
def partner_add(ctx: click.Context, name: str, email: str | None) -> None:
    """Create a partner; its API key is printed once (JSON)."""
    emit_json(client_of(ctx).create_partner(name, email))


@main.group()
def token() -> None:
    """Operator tokens (admin): list, add, rm."""


@token.command("list")
@JSON_OPT
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """List tokens (never the secrets)."""
    listing(
        client_of(ctx).tokens(),
        as_json,
        ["ID", "KIND", "ROLE", "NAME", "SITE", "CREATED", "REVOKED"],
        lambda t: [
            t.id,
            t.kind,
            t.role,
            t.name,
            t.site_id or "-",
            t.created_at,
            t.revoked_at or "-",
        ],
    )


@token.command("add")
@click.option(
    "--role",
    type=click.Choice(["admin", "operator", "auditor", "client"]),
    required=True,
    help="What the token may do.",
)
@click.option("--name", required=True, help="Who or what holds it.")
@click.option("--site", "site_id", help="The one site of a client token.")
@click.pass_context
def token_add(ctx: click.Context, role: str, name: str, site_id: str | None) -> None:
    """Create a token; the secret is printed once (JSON)."""
    emit_json(client_of(ctx).create_token(role, name, site_id))


@token.command("rm")
@click.argument("token_id")
@YES_OPT
@click.pass_context
def token_rm(ctx: click.Context, token_id: str, yes: bool) -> None:
    """Revoke a token."""
    confirm(yes, f"Revoke token {token_id}")
    emit_json(client_of(ctx).revoke_token(token_id))


@main.group()
def audit() -> None:
    """The audit log (admin, auditor)."""


@audit.command("list")
@click.option("--site", "site_id", help="Only this site.")
@click.option("--action", help="Only this action (e.g. credential.reveal).")
@click.option("--before", type=int, help="Page: entries with an id below this.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most N."
)
@JSON_OPT
@click.pass_context
def audit_list(
    ctx: click.Context,
    site_id: str | None,
    action: str | None,
    before: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """List audit entries, newest first."""
    listing(
        client_of(ctx).audit(site_id, action, before, limit),
        as_json,
        ["ID", "AT", "ACTOR", "ACTION", "TARGET", "SITE"],
        lambda a: [a.id, a.at, a.actor, a.action, a.target, a.site_id or "-"],
    )


@main.command("stats")
@JSON_OPT
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Fleet totals: appliances online/offline, drift, incidents in 24 h."""
    data = client_of(ctx).stats()
    if as_json:
        emit_json(data)
    else:
        emit_record(data)


# ---------------------------------------------------------------- console


@main.command("tui")
@click.option(
    "--local",
    "local_dir",
    is_flag=False,
    flag_value=DEFAULT_STATE_DIR,
    default=None,
    metavar="[STATE_DIR]",
    help=f"On the appliance: show the agent's own state (default {DEFAULT_STATE_DIR}).",
)
@click.option("--read-only", is_flag=True, help="Disable every mutation.")
@click.pass_context
def tui(ctx: click.Context, local_dir: str | None, read_only: bool) -> None:
    """Open the operator console (or the appliance console with --local)."""
    if local_dir is not None:
        from .local import LocalStateError, read_state

        try:
            read_state(local_dir, evidence_limit=1)
        except LocalStateError as e:
            fail(str(e), ExitCode.USAGE)
        from .app import LocalApp

        LocalApp(local_dir, read_only=read_only).run()
        return
    root = ctx.find_root().obj or {}
    from .client import resolve_config

    server, tok = resolve_config(root.get("server"), root.get("token"), root.get("profile"))
    from .app import OsirisApp

    OsirisApp(server, tok, read_only=read_only).run()


def _require_lab() -> None:
    """The demo is a developer/lab tool in ``osiris_lab``, imported only inside its commands.

    No production module imports ``osiris_lab`` at load time (``tests/test_layering.py`` allows
    only these lazy imports), and the appliance's Nix package leaves it out: say so, not a trace.
    """
    import importlib.util

    if importlib.util.find_spec("osiris_lab") is None:
        fail("osiris demo is a lab tool and osiris_lab is not installed here", ExitCode.USAGE)


@main.group(invoke_without_command=True)
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    default="demo-data",
    show_default=True,
    help="Demo data dir (wiped at start unless --keep).",
)
@click.option("--keep", is_flag=True, help="Reuse the data dir of an earlier run.")
@click.option("--headless", is_flag=True, help="No console: run, inject chaos, print a summary.")
@click.option("--minutes", type=click.IntRange(1, 1440), help="Headless run length (default 1).")
@click.option("--seconds", type=click.IntRange(10, 86400), help="Headless run length, seconds.")
@click.option("--port", type=click.IntRange(1, 65535), help="Server port (default: a free one).")
@click.option(
    "--linux/--no-linux",
    default=True,
    show_default=True,
    help="Add a Linux lab host over a real local sshd (skipped where the machine has no sshd).",
)
@click.option("--no-chaos", is_flag=True, help="Headless: inject no drift.")
@JSON_OPT
@click.pass_context
def demo(
    ctx: click.Context,
    data: str,
    keep: bool,
    headless: bool,
    minutes: int | None,
    seconds: int | None,
    port: int | None,
    linux: bool,
    no_chaos: bool,
    as_json: bool,
) -> None:
    """LAB DEMO: server, three clinics, agents and simulated hosts on 127.0.0.1.

    Opens the console on the fleet view (press x to inject drift), or with --headless runs for
    --minutes (default 1) with drift injected on a schedule and prints a summary; exit 0 only
    if every receipt verified offline and nothing was lost. Ctrl-C stops every demo process.
    """
    if ctx.invoked_subcommand is not None:
        return
    import pathlib

    _require_lab()
    from osiris_lab.demo import DemoError, Options, run

    if minutes and seconds:
        fail("give --minutes or --seconds, not both", ExitCode.USAGE)
    opts = Options(
        data=pathlib.Path(data),
        keep=keep,
        headless=headless,
        seconds=seconds or 60 * (minutes or 1),
        port=port or 0,
        linux=linux,
        chaos=not no_chaos,
        as_json=as_json,
    )
    try:
        code = run(opts)
    except DemoError as e:
        # The first line as usual; a child's log tail (if any) indented below it.
        first, _, tail = str(e).partition("\n")
        write_error(first, PROG)
        if tail:
            click.echo(safe_text(tail), err=True)
        sys.exit(ExitCode.BAD)
    sys.exit(code)


DEMO_DATA_OPT = click.option(
    "--data",
    type=click.Path(file_okay=False),
    default="demo-data",
    show_default=True,
    help="Data dir of the running demo.",
)


@demo.command("chaos")
@click.option("--host", required=True, help="Lab host, e.g. dc01, fs01, lin01.")
@click.option("--fault", required=True, help="Fault, e.g. firewall_off (see `osiris demo hosts`).")
@click.option("--site", help="Clinic, when the host name exists at several (e.g. northside).")
@DEMO_DATA_OPT
@JSON_OPT
def demo_chaos(host: str, fault: str, site: str | None, data: str, as_json: bool) -> None:
    """Inject drift into a lab host of the running demo; L1 heals it within a cycle or two."""
    _require_lab()
    from osiris_lab.demo import DemoError, farm_chaos, running_state

    try:
        st = running_state(data)
        out = farm_chaos(st.control_url, st.control_token, host, fault, site or st.sites[0])
    except DemoError as e:
        fail(str(e), ExitCode.BAD)
        return
    if as_json:
        emit_json(out)
    else:
        drifting = ", ".join(out["drifting"]) or "nothing the host model detects"
        click.echo(
            _one_line(
                f"{out['fault']} injected on {out['site']}/{out['host']}; drifting: {drifting}"
            )
        )


@demo.command("hosts")
@DEMO_DATA_OPT
@JSON_OPT
def demo_hosts(data: str, as_json: bool) -> None:
    """The running demo's lab hosts: faults injected, runbooks drifting, phases run."""
    _require_lab()
    from osiris_lab.demo import DemoError, farm_hosts, running_state

    try:
        st = running_state(data)
        hosts = farm_hosts(st.control_url, st.control_token)
    except DemoError as e:
        fail(str(e), ExitCode.BAD)
        return
    if as_json:
        emit_json(hosts)
        return
    emit_table(
        [
            [
                f"{h['site']}/{h['host']}",
                h["kind"],
                ", ".join(h["injected"]) or "-",
                ", ".join(h["drifting"]) or "compliant",
                sum(h["phases_run"].values()),
            ]
            for h in hosts
        ],
        ["HOST", "KIND", "INJECTED", "DRIFTING", "PHASES RUN"],
    )


def _register() -> None:
    from .evidence_cmd import evidence
    from .packet_cmd import packet
    from .trust_cmd import trust

    main.add_command(evidence)
    main.add_command(packet)
    main.add_command(trust)


_register()

__all__ = ["main", "UsageError"]


if __name__ == "__main__":
    main()
