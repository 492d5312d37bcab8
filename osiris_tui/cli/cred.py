"""`osiris cred …`: the credentials of a site's hosts — list, show, add, rotate, rm, reveal.

Secrets are read from a hidden prompt, ``--password-stdin`` or ``--key-file``, never argv; the
server masks them in every answer but the (admin, audited) reveal.
"""

from __future__ import annotations

from typing import Any

import click

from osiris_core.errors import ExitCode

from ..columns import CREDENTIALS
from .base import (
    JSON_OPT,
    YES_OPT,
    client_of,
    confirm,
    emit_json,
    fail,
    listing,
    read_secret,
    show,
)


def TRUST_OPTS(f: Any) -> Any:  # noqa: N802 - a decorator named like the other option sets
    """WinRM listener trust and auth (docs/appliance.md §7)."""
    f = click.option(
        "--auth",
        type=click.Choice(["ntlm", "kerberos", "basic"]),
        help="WinRM authentication (default ntlm; basic: lab hosts only).",
    )(f)
    f = click.option(
        "--ca-bundle",
        type=click.File("r"),
        help="WinRM: PEM file of the CA(s) that issued the listener's certificate.",
    )(f)
    return click.option("--cert-thumbprint", help="WinRM: SHA-256 of the listener's "
                        "certificate (64 hex digits; not certlm's SHA-1).")(f)  # fmt: skip


def _trust(kind: str, thumbprint: str | None, ca_bundle: Any, auth: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if thumbprint is not None:
        out["cert_thumbprint"] = thumbprint
    if ca_bundle is not None:
        out["ca_bundle"] = ca_bundle.read()
    if auth is not None:
        out["auth"] = auth
    if out and kind != "winrm":
        fail("--cert-thumbprint/--ca-bundle/--auth apply to winrm credentials only", ExitCode.USAGE)
    return out


def SUDO_OPTS(f: Any) -> Any:  # noqa: N802 - a decorator named like the other option sets
    """The sudo password of an SSH login that becomes root through sudo (never on argv)."""
    f = click.option(
        "--ask-become-password",
        is_flag=True,
        help="SSH + sudo: prompt (hidden) for the password sudo asks for, when it is not the "
        "login password (a key login, or another sudo password).",
    )(f)
    return click.option(
        "--become-password-stdin",
        is_flag=True,
        help="SSH + sudo: read that password from stdin (the line after the login password's "
        "when --password-stdin is given too).",
    )(f)


def _become(kind: str, from_stdin: bool, ask: bool) -> dict[str, Any]:
    if not (from_stdin or ask):
        return {}
    if kind not in ("ssh_password", "ssh_key"):
        fail("--become-password-stdin/--ask-become-password apply to ssh credentials only",
             ExitCode.USAGE)  # fmt: skip
    return {"become_password": read_secret(from_stdin, "Sudo (become) password")}


@click.group()
def cred() -> None:
    """Credentials of a site's hosts: list, add, rotate, rm, reveal (admin)."""


@cred.command("list")
@click.option("--site", "site_id", required=True, help="Site id.")
@JSON_OPT
@click.pass_context
def cred_list(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """List a site's credentials (secrets masked)."""
    listing(client_of(ctx).credentials(site_id), as_json, CREDENTIALS)


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
@click.option(
    "--tls/--no-tls",
    "use_tls",
    default=None,
    help="WinRM over HTTPS (default) or plain HTTP (lab simulators only).",
)
@click.option(
    "--verify-tls/--no-verify-tls",
    "verify_tls",
    default=None,
    help="Check the WinRM host's certificate (default: check).",
)
@click.option("--lab", is_flag=True, help="A lab simulator host.")
@click.option(
    "--sudo",
    is_flag=True,
    help="SSH: log in as a named user and run scripts through sudo (what lets LIN-SSH-001 set "
    "PermitRootLogin no without locking the agent out).",
)
@SUDO_OPTS
@TRUST_OPTS
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
    use_tls: bool | None,
    verify_tls: bool | None,
    lab: bool,
    sudo: bool,
    become_password_stdin: bool,
    ask_become_password: bool,
    cert_thumbprint: str | None,
    ca_bundle: Any,
    auth: str | None,
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
    if (use_tls is not None or verify_tls is not None) and kind != "winrm":
        fail("--tls/--verify-tls apply to winrm credentials only", ExitCode.USAGE)
    if use_tls is not None:
        fields["use_tls"] = use_tls
    if verify_tls is not None:
        fields["verify_tls"] = verify_tls
    if lab:
        fields["lab"] = True
    fields.update(_trust(kind, cert_thumbprint, ca_bundle, auth))
    if kind in ("winrm", "ssh_password"):
        fields["password"] = read_secret(password_stdin)
    elif kind == "ssh_key":
        if key_file is None:
            fail("an ssh_key credential needs --key-file", ExitCode.USAGE)
        fields["private_key"] = key_file.read()
    if sudo:
        if kind not in ("ssh_password", "ssh_key"):
            fail("--sudo applies to ssh credentials only", ExitCode.USAGE)
        fields["sudo"] = True
    become = _become(kind, become_password_stdin, ask_become_password)
    if become and not sudo:
        fail("a become password is used only with --sudo", ExitCode.USAGE)
    fields.update(become)
    show(client_of(ctx).add_credential(site_id, fields), as_json)


@cred.command("rotate")
@click.option("--site", "site_id", required=True, help="Site id.")
@click.argument("cred_id")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@click.option("--key-file", type=click.File("r"), help="New private key file (ssh_key).")
@SUDO_OPTS
@TRUST_OPTS
@YES_OPT
@JSON_OPT
@click.pass_context
def cred_rotate(
    ctx: click.Context,
    site_id: str,
    cred_id: str,
    password_stdin: bool,
    key_file: Any,
    become_password_stdin: bool,
    ask_become_password: bool,
    cert_thumbprint: str | None,
    ca_bundle: Any,
    auth: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Replace a credential's secret (effective at each appliance's next check-in); with
    --cert-thumbprint/--ca-bundle also how a WinRM listener is trusted (the secret must be given
    with it: it decides where the secret goes). --become-password-stdin/--ask-become-password
    alone rotate only the sudo password of an SSH credential with sudo."""
    c = client_of(ctx)
    current = c.credential(site_id, cred_id)
    only_become = (become_password_stdin or ask_become_password) and not (
        password_stdin or key_file is not None
    )
    if only_become:
        body = {}
    elif current.kind == "ssh_key":
        if key_file is None:
            fail("rotating an ssh_key credential needs --key-file", ExitCode.USAGE)
        body = {"private_key": key_file.read()}
    elif current.kind == "local":
        fail("a local credential has no secret to rotate", ExitCode.USAGE)
    else:
        body = {"password": read_secret(password_stdin, "New password")}
    body.update(_become(current.kind, become_password_stdin, ask_become_password))
    body.update(_trust(current.kind, cert_thumbprint, ca_bundle, auth))
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
