"""A packet zip for the packet store's tests: the layout the server checks (manifest, files).

Not built by ``osiris packet build`` on purpose: the store checks only that a zip is an intact
packet of its site (the signatures are the auditor's to check offline), so a small zip with a
canonical manifest is what its tests need — and, with ``manifest_site``/``tamper``/``extra``,
the hostile uploads. No boto3 here: tests/security imports it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile

from osiris_core import canonical
from osiris_core.packet import SCHEMA, month_period


def fake_packet(site_id: str, month: str = "2026-10", extra: dict[str, bytes] | None = None,
                manifest_site: str | None = None, tamper: bool = False) -> bytes:  # fmt: skip
    """A zip with the packet layout the server checks (manifest, listed files)."""
    files = {"bundles.jsonl": b'{"x":1}\n', "checkpoint": b"cp\n", "report.md": b"# r\n"}
    files.update(extra or {})
    start, end = month_period(month)
    manifest = {
        "schema": SCHEMA,
        "site_id": manifest_site or site_id,
        "month": month,
        "period": {"start": start, "end": end},
        "checkpoint_size": 1,
        "appliances": {},
        "files": [
            {"path": p, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
            for p, b in sorted(files.items())
        ],
    }
    if tamper:
        files["report.md"] = b"# all controls met\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", canonical.dumps(manifest))
        for p, b in sorted(files.items()):
            z.writestr(p, b)
    return buf.getvalue()
