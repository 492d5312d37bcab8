"""Offline verification throughput beside raw PyNaCl Ed25519 verify/s, measured in one run.

Budget (DESIGN §5): our bundles/s ≥ 50 % of raw single-core Ed25519 verify/s. The verifier
uses one worker process per core for large exports, as `osiris evidence verify` does.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nacl.signing  # noqa: E402

from osiris_core.synth import make_export  # noqa: E402
from osiris_core.trust import TrustRoots, load_trust_item  # noqa: E402
from osiris_core.verify import verify_export  # noqa: E402

N = int(os.environ.get("BENCH_VERIFY_N", "20000"))


def raw_verify_per_s(n: int = 20000) -> float:
    sk = nacl.signing.SigningKey.generate()
    vk = sk.verify_key
    msgs = [os.urandom(1024) for _ in range(256)]
    sigs = [sk.sign(m).signature for m in msgs]
    t = time.perf_counter()
    for i in range(n):
        vk.verify(msgs[i & 255], sigs[i & 255])
    return n / (time.perf_counter() - t)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        ex = make_export(N, 10)
        out = ex.write(Path(tmp) / "export")
        # the auditor's way: keys pinned from outside the export (as --trust does), so the
        # strict verdict below is the one a packet gets, not W_UNPINNED
        roots = TrustRoots()
        load_trust_item(ex.pins(), "pinned keys", roots)
        raw = raw_verify_per_s()
        t = time.perf_counter()
        report = verify_export(out, trust=roots)
        ours = N / (time.perf_counter() - t)
        t = time.perf_counter()
        verify_export(out, trust=roots, workers=1)
        single = N / (time.perf_counter() - t)
    if not report.ok(strict=True):
        print("verify bench: export did not verify", file=sys.stderr)
        return 1
    ratio = ours / raw
    print(f"verify: {N} bundles (signature + chain + inclusion + checkpoint + cosignature)")
    print(f"  ours, {os.cpu_count()} workers : {ours:10,.0f} bundles/s")
    print(f"  ours, 1 worker    : {single:10,.0f} bundles/s")
    print(f"  limit: raw Ed25519 verify, 1 core: {raw:10,.0f} /s")
    verdict = "OK" if ratio >= 0.5 else "UNDER BUDGET"
    print(f"  ratio {ratio:.0%} (budget >= 50%): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
