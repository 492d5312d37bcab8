"""``osiris-server client-ca init|show``: the CA that issues appliances' mTLS certificates.

Why a command and not made on first start: every appliance's certificate chains to this CA, so
it is made once, on purpose, by whoever runs the server (its shell, its data directory), and
never replaced behind anyone's back. ``init`` prints the path to give ``serve --client-ca``;
from then on every claim that sends a CSR gets a certificate (osiris_server/client_ca.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click

from osiris_core.cli_base import fail
from osiris_core.errors import ExitCode, OsirisError
from osiris_server.cli_options import DATA, JSON, PROG


@click.group("client-ca")
def client_ca_group() -> None:
    """The client CA that issues appliances' mTLS certificates at enrolment."""


def _describe(data: Path) -> dict[str, object]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from osiris_server import client_ca
    from osiris_server import config as config_mod

    keys = config_mod.load(data).keys_dir
    cert_path, key_path = client_ca.paths(keys)
    if not cert_path.exists():
        raise OsirisError(f"no client CA in {keys}: run `osiris-server client-ca init`")
    client_ca.load(keys)  # the key is there, 0600 and matches (or this raises)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "cert": str(cert_path),
        "key": str(key_path),
        "subject": cert.subject.rfc4514_string(),
        "sha256": hashlib.sha256(der).hexdigest(),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _print(info: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
        return
    click.echo(f"client CA: {info['subject']} (valid until {info['not_after']})")
    click.echo(f"sha256:    {info['sha256']}")
    click.echo(f"serve with: --client-ca {info['cert']}")


@client_ca_group.command("init")
@DATA
@JSON
def init(data: Path, as_json: bool) -> None:
    """Create the client CA in DATA/keys (never replaces one) and say how to serve with it."""
    from osiris_server import client_ca
    from osiris_server import config as config_mod

    try:
        cfg = config_mod.load(data)
        client_ca.init(cfg.keys_dir, cfg.origin)
        _print(_describe(data), as_json)
    except (OsirisError, OSError) as exc:
        fail(str(exc), ExitCode.USAGE, PROG)


@client_ca_group.command("show")
@DATA
@JSON
def show(data: Path, as_json: bool) -> None:
    """Show the client CA's subject, fingerprint, expiry and the --client-ca path."""
    try:
        _print(_describe(data), as_json)
    except (OsirisError, OSError) as exc:
        fail(str(exc), ExitCode.USAGE, PROG)
