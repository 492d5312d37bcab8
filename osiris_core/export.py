"""The evidence export folder: written by `osiris evidence pull`, read by `evidence verify`.

Layout (docs/evidence-format.md):
    keys.json                        {"log": "<log vkey>", "appliances": ["<vkey>", ...],
                                      "rotations": {"<appliance id>": [<statement>, ...]}}
    bundles.jsonl                    one canonical envelope per line, each chain in seq order
    proofs/<bundle-hash-hex>.tlog-proof
    checkpoint                       the newest checkpoint note, with cosignatures
    checkpoint.tsr                   (optional) RFC 3161 token over the checkpoint body
                                     (osiris_core/timestamp.py), when the server holds one

Writes go to a temporary sibling folder that is renamed into place, so an interrupted pull never
leaves a half-written export that could be mistaken for a complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import canonical
from .evidence import bundle_hash, envelope_bytes


def write_export(
    out: Path,
    *,
    log_vkey: str,
    appliance_vkeys: Iterable[str],
    envelopes: Iterable[Mapping[str, Any]],
    proofs: Mapping[str, str],
    checkpoint: str,
    overwrite: bool = False,
    rotations: Mapping[str, list[Any]] | None = None,
    timestamp_token: bytes | None = None,
) -> int:
    """Write an export folder; `proofs` maps bundle hash ("sha256:…") to tlog-proof text.

    Returns the number of bundles written.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        keys: dict[str, Any] = {"log": log_vkey, "appliances": sorted(set(appliance_vkeys))}
        if rotations:
            # each appliance's key history (statements signed by the old key), as the server
            # claims it; the verifier trusts it only through the clinic's attestation
            keys["rotations"] = {k: list(v) for k, v in sorted(rotations.items()) if v}
        (tmp / "keys.json").write_text(json.dumps(keys, indent=2) + "\n")
        (tmp / "proofs").mkdir()
        n = 0
        with open(tmp / "bundles.jsonl", "wb") as f:
            for env in envelopes:
                f.write(envelope_bytes(env) + b"\n")
                h = bundle_hash(env["bundle"])
                proof = proofs.get(h)
                if proof is not None:
                    (tmp / "proofs" / f"{h.removeprefix('sha256:')}.tlog-proof").write_text(proof)
                n += 1
        (tmp / "checkpoint").write_text(checkpoint)
        if timestamp_token is not None:
            (tmp / "checkpoint.tsr").write_bytes(timestamp_token)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        return n
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_envelope_line(line: bytes) -> Any:
    """Strictly parse one bundles.jsonl line (must already be canonical)."""
    return canonical.loads_canonical(line)
