"""Per-appliance critical sections that hold across threads *and* processes.

Evidence ingest checks a batch against the appliance's chain and signing key, appends it to the
log, then indexes it; a key rotation checks the highest accepted seq, then switches the key.
Each of those must run alone per appliance, or a bundle signed with the old key could slip in
beside a rotation that already declared that seq for the new key (and two bundles could claim
one seq). Several gunicorn workers may serve one data directory (docs/server.md), so a
``threading.Lock`` is not enough.

``ApplianceLocks`` stripes appliances over ``n`` locks. Each stripe is a ``threading.Lock``
(threads of this process) plus a POSIX record lock on byte ``i`` of one lock file in the data
directory (other processes). Record locks belong to the process, not the thread, which is why
the thread lock is taken first: inside a process only one thread at a time holds a stripe's
record lock. Stripes are leaf locks: nothing takes a second stripe while holding one, so they
cannot deadlock. A process that dies (kill -9) drops its record locks with it.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: one process only
    fcntl = None  # type: ignore[assignment]


class ApplianceLocks:
    """``with locks.hold(appliance_id): …`` — one holder per stripe across every process
    that opens the same ``path``."""

    def __init__(self, path: Path | None, stripes: int = 64) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._fd: int | None = None
        if path is not None and fcntl is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def _index(self, appliance_id: str) -> int:
        return zlib.crc32(appliance_id.encode("utf-8", "surrogatepass")) % len(self._locks)

    @contextmanager
    def hold(self, appliance_id: str) -> Iterator[None]:
        i = self._index(appliance_id)
        with self._locks[i]:
            fd = self._fd
            if fd is None:
                yield
                return
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, i, os.SEEK_SET)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, i, os.SEEK_SET)

    def close(self) -> None:
        """Close the lock file once no thread holds a stripe (waits a little for holders)."""
        held = [lk for lk in self._locks if lk.acquire(timeout=5.0)]
        try:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
        finally:
            for lk in held:
                lk.release()
