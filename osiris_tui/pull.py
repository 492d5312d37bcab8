"""`osiris evidence pull`: fetch a site's evidence from Central Command as an export folder.

The folder is the one `osiris evidence verify` reads (docs/evidence-format.md): every envelope,
one inclusion proof per bundle against one checkpoint, that checkpoint, and the public keys.
Nothing the server says is trusted here — the verifier checks it all afterwards, offline.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osiris_core.errors import ExitCode
from osiris_core.evidence import bundle_hash
from osiris_core.export import write_export
from osiris_core.note import TlogProof

from .client import Client, ClientError, NotFound, UsageError

PAGE = 1000


class NotCosigned(ClientError):
    """No checkpoint the site's own appliances cosigned exists yet (exit 1: the thing checked,
    the clinic's witness, is missing)."""

    code = "E_NOT_COSIGNED"
    exit_code = ExitCode.BAD


class Pruned(ClientError):
    """The period reaches evidence whose body the server pruned after its retention period
    (osiris_server/retention.py): the export would have a gap, so none is written (exit 1)."""

    code = "E_PRUNED"
    exit_code = ExitCode.BAD


def _pruned(row: dict[str, Any]) -> Pruned:
    info = row.get("pruned") or {}
    keys = ", ".join(str(k) for k in info.get("worm_keys") or []) or "unknown"
    return Pruned(
        f"appliance {row.get('appliance_id')} seq {row.get('seq')} (log index {row.get('index')})"
        f" was pruned from the server after its retention period; its signed envelope is in "
        f"WORM storage (keys: {keys}): build this period from the WORM copy"
    )


def _checkpoint(client: Client, site_id: str, latest: bool, allow_uncosigned: bool) -> Any:
    if latest:
        return client.get("/log/checkpoint")
    try:
        return client.get("/log/checkpoint", cosigned_by_site=site_id)
    except NotFound:
        if not allow_uncosigned:
            raise NotCosigned(
                f"no checkpoint cosigned by an appliance of site {site_id} yet: the clinic has "
                "not witnessed this log. Wait for the next check-in, or pass "
                "--allow-uncosigned to prove against the log's word alone (verify will warn)"
            ) from None
    return client.get("/log/checkpoint")


def _row_at(client: Client, site_id: str, appliance_id: str, seq: int) -> dict[str, Any] | None:
    """The evidence row of one seq (None past the chain's head)."""
    page = client.get("/evidence", site=site_id, appliance=appliance_id, after_seq=seq - 1, limit=1)
    rows = page.get("evidence", [])
    return rows[0] if rows and rows[0]["seq"] == seq else None


def start_seq(client: Client, site_id: str, appliance_id: str, start: str) -> int:
    """The seq a period's pull starts at: the appliance's last bundle that finished before
    ``start`` (the start boundary), or 1. O(log n) one-row requests: a galloping search for a
    seq at or after ``start``, then a binary search (chains are in time order; a clock that
    jumped only moves the boundary, and the verifier checks whatever is chosen)."""
    first = _row_at(client, site_id, appliance_id, 1)
    if first is None or first["finished_at"] >= start:
        return 1
    lo, hi = 1, 2  # invariant: seq lo finished before start
    while True:
        row = _row_at(client, site_id, appliance_id, hi)
        if row is None or row["finished_at"] >= start:
            break
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        row = _row_at(client, site_id, appliance_id, mid)
        if row is not None and row["finished_at"] < start:
            lo = mid
        else:
            hi = mid
    return lo


def checkpoint_token(
    client: Client, size: int, anchor: bool = False, warn: Callable[[str], None] | None = None
) -> bytes | None:
    """The server's RFC 3161 token over checkpoint ``size`` (``checkpoint.tsr``), or None.

    ``anchor`` (a packet build): first ask the server to timestamp that very size now
    (POST /log/timestamp; the stored token if it has one). A server without a TSA, a TSA that
    is down or a role that may not anchor is a warning (``warn``), never a failed pull: the
    packet is then built without a token, and a verifier pinning a TSA will say so. Nothing
    here is trusted: ``osiris evidence verify --tsa-ca`` checks the token offline."""
    if anchor:
        try:
            return base64.b64decode(client.post("/log/timestamp", {"size": size})["token"])
        except (ClientError, KeyError, ValueError) as e:
            if warn is not None:
                warn(f"no RFC 3161 timestamp for checkpoint {size}: {e}")
    try:
        return base64.b64decode(client.get("/log/timestamp", size=size)["token"])
    except NotFound:
        return None
    except (ClientError, KeyError, ValueError) as e:
        if warn is not None and not anchor:
            warn(f"could not fetch the RFC 3161 timestamp of checkpoint {size}: {e}")
        return None


def pull_export(
    client: Client,
    site_id: str,
    out: Path,
    *,
    appliance_id: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    latest: bool = False,
    allow_uncosigned: bool = False,
    period: tuple[str, str] | None = None,
    skipped: dict[str, int] | None = None,
    anchor: bool = False,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Write the export folder; returns the number of bundles. Raises ClientError on failure.

    By default the export stops at the newest checkpoint that an appliance of this site has
    cosigned, so every bundle in it carries the clinic's own witness; without one it refuses
    (NotCosigned, exit 1) unless ``allow_uncosigned``. ``latest=True`` takes the newest
    checkpoint instead (its newest bundles then have the log's signature only, and verify
    warns).

    ``period`` = (start, end): a packet's pull. Per appliance it takes the chain from the start
    boundary (last bundle before ``start``, or seq 1) through the end boundary (first bundle
    at or after ``end``), so the packet proves its own completeness; ``skipped``, if given,
    receives per appliance the reason its end is open (key = appliance id).

    The server's RFC 3161 token over the chosen checkpoint, if any, goes beside it as
    ``checkpoint.tsr``; ``anchor`` asks the server to make one first (``checkpoint_token``).
    """
    keys = client.log_keys()
    apps = [a for a in keys.get("appliances", []) if a.get("site_id") == site_id]
    if appliance_id is not None:
        apps = [a for a in apps if a.get("appliance_id") == appliance_id]
    client.site(site_id)  # a clear 404 for an unknown site
    cp = _checkpoint(client, site_id, latest, allow_uncosigned)
    size = int(cp["size"])
    envelopes: list[dict[str, Any]] = []
    proofs: dict[str, str] = {}
    for a in apps:
        app_id = a["appliance_id"]
        after = 0 if period is None else start_seq(client, site_id, app_id, period[0]) - 1
        closed = False
        while not closed:
            # One request per page brings the envelopes and their inclusion paths in the tree of
            # `size` (bulk proofs); the tlog-proof files are assembled here, checked by verify.
            page = client.get(
                "/evidence",
                site=site_id,
                appliance=app_id,
                after_seq=after,
                limit=PAGE,
                proof_size=size,
            )
            rows = page.get("evidence", [])
            for r in rows:
                env = r["envelope"]
                if env is None and r.get("pruned"):
                    raise _pruned(r)  # never a silent gap in a packet
                proof = r.get("proof")
                if r["index"] >= size or proof is None:
                    # logged after the checkpoint: neither it nor anything later is covered
                    if skipped is not None and period is not None:
                        skipped[app_id] = r["seq"]
                    closed = True
                    break
                envelopes.append(env)
                proofs[bundle_hash(env["bundle"])] = TlogProof(
                    index=int(proof["index"]),
                    hashes=[base64.b64decode(h) for h in proof["hashes"]],
                    checkpoint=cp["note"],
                ).format()
                if period is not None and env["bundle"]["finished_at"] >= period[1]:
                    closed = True  # the end boundary: the first bundle after the period
                    break
            if progress is not None:
                progress(len(envelopes), len(envelopes))
            if len(rows) < PAGE:
                break
            after = rows[-1]["seq"]
    vkeys = [a["signing_vkey"] for a in apps] + [a["cosign_vkey"] for a in apps]
    rotations = {a["appliance_id"]: list(a.get("rotations") or []) for a in apps}
    for rots in rotations.values():
        for r in rots:
            new = (r.get("rotation") or {}).get("new_vkey") if isinstance(r, dict) else None
            old = (r.get("rotation") or {}).get("old_vkey") if isinstance(r, dict) else None
            vkeys += [v for v in (old, new) if isinstance(v, str)]
    token = checkpoint_token(client, size, anchor, warn)
    try:
        return write_export(
            out,
            log_vkey=keys["log"],
            appliance_vkeys=vkeys,
            envelopes=envelopes,
            proofs=proofs,
            checkpoint=cp["note"],
            overwrite=overwrite,
            rotations=rotations,
            timestamp_token=token,
        )
    except FileExistsError as e:
        raise UsageError(f"{e} (use --overwrite)") from None
