"""The bucket's word on what is in WORM: the retention prune believes only what this confirms.

An ``uploaded`` row in ``worm_objects`` is the index's claim; whoever can write the index (a
hostile DB admin, a restore from the wrong backup) could make one up. Before a body is pruned
the object itself is looked up in the bucket (HEAD of the recorded version).
"""

from __future__ import annotations

import base64
from typing import Any

from osiris_server.worm import _s3_error
from osiris_server.worm_config import WormConfig
from osiris_server.worm_guard import COMPLIANCE, GuardedClient


def confirm_locked(
    client: GuardedClient, cfg: WormConfig, rows: list[dict[str, Any]]
) -> tuple[frozenset[str], list[str]]:
    """Which of the index's ``uploaded`` rows the BUCKET confirms: that version of the key is
    there, locked COMPLIANCE, with the bytes' length and SHA-256 the row records. The retention
    prune believes only these (a row written into the index by hand, or an object since lost,
    covers nothing). Returns (confirmed keys, one line per row refused)."""
    ok: set[str] = set()
    problems: list[str] = []
    for row in rows:
        key = row["key"]
        kw: dict[str, Any] = {"Bucket": cfg.bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if row.get("version_id"):
            kw["VersionId"] = row["version_id"]
        try:
            head = client.head_object(**kw)
        except Exception as exc:  # noqa: BLE001 - any failure: not confirmed, say which
            problems.append(f"{key}: not in the bucket ({_s3_error(exc)})")
            continue
        b64 = base64.b64encode(bytes.fromhex(row["sha256"])).decode() if row["sha256"] else ""
        theirs = head.get("ChecksumSHA256") or (head.get("Metadata") or {}).get("sha256")
        if head.get("ObjectLockMode") != COMPLIANCE:
            problems.append(f"{key}: not locked in COMPLIANCE mode ({head.get('ObjectLockMode')})")
        elif theirs not in (b64, row["sha256"]) or int(head.get("ContentLength", -1)) != int(
            row["bytes"]
        ):
            problems.append(f"{key}: the bucket holds other bytes than the index records")
        else:
            ok.add(key)
    return frozenset(ok), problems
