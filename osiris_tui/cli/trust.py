"""`osiris trust …`: the auditor's own trust store — keys pinned from the clinic, not the MSP.

The store is one JSON file under the user's config dir (``$XDG_CONFIG_HOME/osiris/trust.json``,
0600, refused if others can read or write it). `osiris evidence verify` reads it unless told
not to, beside any ``--trust`` files and ``--log-key`` values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NoReturn

import click

from osiris_core import canonical
from osiris_core.cli_base import fail
from osiris_core.errors import ExitCode, KeyFormatError
from osiris_core.ids import TRUST_NAME
from osiris_core.keys import Verifier
from osiris_core.trust import (
    TrustFileError,
    describe_item,
    read_store,
    store_path,
    write_store,
)

from ..fmt import safe, safe_json


def _err(msg: str) -> NoReturn:
    fail(msg, ExitCode.USAGE, "osiris")


@click.group("trust")
def trust() -> None:
    """Pinned trust roots: clinic attestations, log keys, appliance keys."""


def _item_of(source: str, site: str | None) -> tuple[object, str]:
    p = Path(source)
    if p.exists():
        try:
            obj = json.loads(p.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            _err(f"{p}: unreadable: {e}")
        kind = "attestation" if isinstance(obj, dict) and "attestation" in obj else "keys"
        return obj, kind
    try:
        v = Verifier.from_vkey(source.strip())
    except KeyFormatError as e:
        _err(f"{source!r} is neither a file nor a vkey: {e}")
    if v.name.startswith("osiris/appliance/"):
        item: dict[str, object] = {"appliances": [v.vkey]}
        if site:
            item["site_id"] = site
        return item, "appliance"
    return {"log": v.vkey}, "log"


@trust.command("add")
@click.argument("source")
@click.option("--name", help="Name of the entry (default: derived from what it pins).")
@click.option("--site", help="For a bare appliance vkey: the site it belongs to.")
def add(source: str, name: str | None, site: str | None) -> None:
    """Pin a trust root: an attestation file, a keys file, or a vkey.

    Prints what it pins with fingerprints; compare them with the ones the clinic reads you.
    Exit 2 if the source cannot be used (nothing is stored).
    """
    obj, kind = _item_of(source, site)
    try:
        pins = describe_item(obj)
        entries = read_store()
    except TrustFileError as e:
        _err(str(e))
    if name is None:
        first = pins[0]["name"] if pins else kind
        if kind == "attestation":
            first = next((p["name"] for p in pins if p["kind"] == "appliance"), first)
        name = re.sub(r"[^A-Za-z0-9._-]", "-", first.split("/")[-1])[:64].strip("-.") or kind
    if not TRUST_NAME.match(name):
        _err(f"name {name!r}: letters, digits, '.', '_' and '-' only")
    entries = [e for e in entries if e.get("name") != name]
    entries.append(
        {"name": name, "kind": kind, "item": obj, "added_at": canonical.utc_now(), "pins": pins}
    )
    write_store(entries)
    for p in pins:
        click.echo(
            safe(f"pinned {p['kind']} {p['name']} {p['fingerprint']} {p['site_id']}".rstrip())
        )
    click.echo(f"added {name} to {store_path()}", err=True)


@trust.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_(as_json: bool) -> None:
    """List pinned trust roots: name, kind, key name, fingerprint, site."""
    try:
        entries = read_store()
    except TrustFileError as e:
        _err(str(e))
    for e in entries:
        for p in e.get("pins", []):
            row = {
                "name": e.get("name", ""),
                "kind": p.get("kind", ""),
                "key": p.get("name", ""),
                "fingerprint": p.get("fingerprint", ""),
                "site_id": p.get("site_id", ""),
                "added_at": e.get("added_at", ""),
            }
            if as_json:
                click.echo(safe_json(row, sort_keys=True))
            else:
                click.echo(
                    safe(
                        f"{row['name']:<24} {row['kind']:<10} {row['fingerprint']}  {row['key']}"
                        f"  {row['site_id']}".rstrip()
                    )
                )


@trust.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove a pinned trust root by name (exit 2 if there is none)."""
    try:
        entries = read_store()
    except TrustFileError as e:
        _err(str(e))
    kept = [e for e in entries if e.get("name") != name]
    if len(kept) == len(entries):
        _err(f"no trust entry named {name!r} (see osiris trust list)")
    write_store(kept)
    click.echo(f"removed {name}", err=True)
