"""Per-site credentials. The secret column holds only a vault token (never plaintext)."""

from __future__ import annotations

from typing import Any

from osiris_server.db import gen
from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import jdump, jload, new_id, now

KINDS = ("winrm", "ssh_password", "ssh_key")
COLS = (
    "id, site_id, host_id, kind, address, port, lab, username, secret_enc,"
    " host_key_fingerprints, use_tls, verify_tls, sudo, ca_bundle, cert_thumbprint, auth,"
    " version, created_at, updated_at"
)


def context(site_id: str, cred_id: str) -> str:
    """Vault context: binds a ciphertext to its site and row (cannot be moved elsewhere)."""
    return f"site:{site_id}/cred:{cred_id}"


def _out(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["lab"] = bool(row["lab"])
    row["use_tls"] = bool(row["use_tls"])
    row["verify_tls"] = bool(row["verify_tls"])
    row["sudo"] = bool(row["sudo"])
    row["host_key_fingerprints"] = jload(row["host_key_fingerprints"], [])
    return row


def new_row_id() -> str:
    return new_id("cred")


def create(w: Writer, cred_id: str, site_id: str, fields: dict[str, Any], secret_enc: str):
    ts = now()
    w.insert(
        "credentials",
        {
            "id": cred_id,
            "site_id": site_id,
            "host_id": fields["host_id"],
            "kind": fields["kind"],
            "address": fields["address"],
            "port": fields["port"],
            "lab": int(fields["lab"]),
            "username": fields["username"],
            "secret_enc": secret_enc,
            "host_key_fingerprints": jdump(fields["host_key_fingerprints"]),
            "use_tls": int(fields["use_tls"]),
            "verify_tls": int(fields["verify_tls"]),
            "sudo": int(fields.get("sudo", False)),
            "ca_bundle": fields.get("ca_bundle", ""),
            "cert_thumbprint": fields.get("cert_thumbprint", ""),
            "auth": fields.get("auth", "ntlm"),
            "version": 1,
            "created_at": ts,
            "updated_at": ts,
        },
    )
    gen.bump(w, gen.site_scope(site_id))


def _bump_for(w: Writer, cred_id: str) -> None:
    row = w.one("SELECT site_id FROM credentials WHERE id = ?", [cred_id])
    if row is not None:
        gen.bump(w, gen.site_scope(row["site_id"]))


def host_taken(w: Writer, site_id: str, host_id: str, except_id: str | None = None) -> bool:
    row = w.one("SELECT id FROM credentials WHERE site_id = ? AND host_id = ?", [site_id, host_id])
    return row is not None and row["id"] != except_id


def update(w: Writer, cred_id: str, fields: dict[str, Any], secret_enc: str | None) -> None:
    cols: dict[str, Any] = {}
    for k in ("host_id", "kind", "address", "port", "username", "ca_bundle", "cert_thumbprint",
              "auth"):  # fmt: skip
        if k in fields:
            cols[k] = fields[k]
    for k in ("lab", "use_tls", "verify_tls", "sudo"):
        if k in fields:
            cols[k] = int(fields[k])
    if "host_key_fingerprints" in fields:
        cols["host_key_fingerprints"] = jdump(fields["host_key_fingerprints"])
    if secret_enc is not None:
        cols["secret_enc"] = secret_enc
    cols["updated_at"] = now()
    sets = ", ".join(f"{k} = ?" for k in cols)
    w.execute(
        f"UPDATE credentials SET {sets}, version = version + 1 WHERE id = ?",
        [*cols.values(), cred_id],
    )
    _bump_for(w, cred_id)


def get(db: Database | Writer, site_id: str, cred_id: str) -> dict[str, Any] | None:
    row = db.one(f"SELECT {COLS} FROM credentials WHERE id = ? AND site_id = ?", [cred_id, site_id])
    return _out(row) if row else None


def for_site(db: Database | Writer, site_id: str) -> list[dict[str, Any]]:
    return [
        _out(r)
        for r in db.query(
            f"SELECT {COLS} FROM credentials WHERE site_id = ? ORDER BY host_id", [site_id]
        )
    ]


def delete(w: Writer, site_id: str, cred_id: str) -> bool:
    gone = w.execute("DELETE FROM credentials WHERE id = ? AND site_id = ?", [cred_id, site_id]) > 0
    if gone:
        gen.bump(w, gen.site_scope(site_id))
    return gone


def all_secret_rows(w: Writer) -> list[dict[str, Any]]:
    return w.query("SELECT id, site_id, secret_enc FROM credentials")


def set_secret(w: Writer, cred_id: str, secret_enc: str) -> None:
    w.execute("UPDATE credentials SET secret_enc = ? WHERE id = ?", [secret_enc, cred_id])
    _bump_for(w, cred_id)


def id_for_host(db: Database | Writer, site_id: str, host_id: str) -> str | None:
    """The id of the site's credential for ``host_id``, or None."""
    row = db.one("SELECT id FROM credentials WHERE site_id = ? AND host_id = ?", [site_id, host_id])
    return row["id"] if row else None


def record_delivery(w: Writer, appliance_id: str, credential_id: str, version: int) -> bool:
    """Remember that this version went to this appliance; True only the first time ever (in
    any process: the primary key decides)."""
    n = w.execute(
        "INSERT INTO credential_deliveries (appliance_id, credential_id, version,"
        " delivered_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [appliance_id, credential_id, version, now()],
    )
    return n > 0
