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

from osiris_core.evidence import bundle_hash
from osiris_core.export import write_export
from osiris_core.note import TlogProof

from .client import Client, NotFound, UsageError

PAGE = 1000


def pull_export(
    client: Client,
    site_id: str,
    out: Path,
    *,
    appliance_id: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    latest: bool = False,
    window: tuple[str, str] | None = None,
    skipped: dict[str, int] | None = None,
) -> int:
    """Write the export folder; returns the number of bundles. Raises ClientError on failure.

    By default the export stops at the newest checkpoint that an appliance of this site has
    cosigned, so every bundle in it carries the clinic's own witness (the auditor's quorum);
    bundles logged after it arrive in the next pull. `latest=True` takes the newest checkpoint
    instead (its newest bundles then have the log's signature only, and verify warns).

    `window` = (start, end) canonical times keeps only bundles whose `finished_at` is in
    [start, end) (a monthly packet); `skipped`, if given, receives the count of such bundles
    left out because the chosen checkpoint does not cover them yet (key "uncovered").
    """
    keys = client.log_keys()
    apps = [a for a in keys.get("appliances", []) if a.get("site_id") == site_id]
    if appliance_id is not None:
        apps = [a for a in apps if a.get("appliance_id") == appliance_id]
    client.site(site_id)  # a clear 404 for an unknown site
    cp = None
    if not latest:
        try:
            cp = client.get("/log/checkpoint", cosigned_by_site=site_id)
        except NotFound:
            cp = None  # nothing cosigned yet: fall back to the newest checkpoint
    if cp is None:
        cp = client.get("/log/checkpoint")
    size = int(cp["size"])
    envelopes: list[dict[str, Any]] = []
    proofs: dict[str, str] = {}
    for a in apps:
        after = 0
        while True:
            # One request per page brings the envelopes and their inclusion paths in the tree of
            # `size` (bulk proofs); the tlog-proof files are assembled here, checked by verify.
            page = client.get(
                "/evidence",
                site=site_id,
                appliance=a["appliance_id"],
                after_seq=after,
                limit=PAGE,
                proof_size=size,
            )
            rows = page.get("evidence", [])
            for r in rows:
                env = r["envelope"]
                if window is not None and not (
                    window[0] <= env["bundle"]["finished_at"] < window[1]
                ):
                    continue
                proof = r.get("proof")
                if r["index"] >= size or proof is None:
                    if skipped is not None:
                        skipped["uncovered"] = skipped.get("uncovered", 0) + 1
                    continue
                envelopes.append(env)
                proofs[bundle_hash(env["bundle"])] = TlogProof(
                    index=int(proof["index"]),
                    hashes=[base64.b64decode(h) for h in proof["hashes"]],
                    checkpoint=cp["note"],
                ).format()
            if progress is not None:
                progress(len(envelopes), len(envelopes))
            if len(rows) < PAGE:
                break
            after = rows[-1]["seq"]
    vkeys = [a["signing_vkey"] for a in apps] + [a["cosign_vkey"] for a in apps]
    try:
        return write_export(
            out,
            log_vkey=keys["log"],
            appliance_vkeys=vkeys,
            envelopes=envelopes,
            proofs=proofs,
            checkpoint=cp["note"],
            overwrite=overwrite,
        )
    except FileExistsError as e:
        raise UsageError(f"{e} (use --overwrite)") from None
