"""The WORM copy: the log's data and every stored packet, put in S3 Object Lock (COMPLIANCE).

Why: the MSP runs Central Command, so evidence kept only there could be shortened or dropped by
the MSP itself. Objects locked in COMPLIANCE mode for six years (``[worm] retention_years``,
upward only) cannot be deleted or shortened by anyone, the MSP's root account included. What
goes up (docs/server.md, WORM), every key content-addressed:

* ``<prefix>/leaves/<first>-<last>-<sha256>.jsonl``: the log's entries (the bundles' canonical
  envelopes, one a line, in index order), in full batches of ``leaf_batch`` (10,000) entries
  and only below the newest signed checkpoint;
* ``<prefix>/checkpoints/<size>-<sha256>``: the log-signed checkpoint note closing each leaves
  batch, each one a TSA timestamped, and the newest;
* ``<prefix>/tsa/<size>-<sha256>.tsr``: every RFC 3161 token in ``tsa_anchors``;
* ``<prefix>/packets/<site>/<sha256>.zip``: every packet in the packet store.

Each PUT carries ``ObjectLockMode=COMPLIANCE``, ``ObjectLockRetainUntilDate`` = now +
retention, and its SHA-256 checksum. ``worm_objects`` tracks pending → uploaded. Resumable and
idempotent: a pending row from a killed pass is redone first; before every PUT the key is looked
up, and an object already there with the same checksum is recorded, never put twice (one
version per key). Every call goes through ``worm_guard.GuardedClient``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris_core.errors import OsirisError
from osiris_server.db import worm as db_worm
from osiris_server.worm_config import WormConfig, WormConfigError
from osiris_server.worm_guard import COMPLIANCE, GuardedClient, _default_years

if TYPE_CHECKING:
    from osiris_server.db.engine import Database
    from osiris_server.log import TransparencyLog

KINDS = ("leaves", "checkpoints", "tsa", "packets")
LEASE_S = 900
Progress = Callable[[str], None]


class WormError(OsirisError):
    """The WORM copy cannot proceed (bucket not locked, unreachable, an object that differs)."""

    code = "E_WORM"


def make_client(cfg: WormConfig) -> GuardedClient:
    """A guarded boto3 S3 client; credentials come from boto3's standard chain only."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise WormError("the WORM copy needs boto3: pip install 'osiris[worm]'") from None
    raw = boto3.client(
        "s3",
        region_name=cfg.region,
        endpoint_url=cfg.endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )
    return GuardedClient(raw, cfg.retention_years)


def _s3_error(exc: Exception) -> str:
    resp = getattr(exc, "response", None) or {}
    err = resp.get("Error") or {}
    return str(err.get("Code") or type(exc).__name__)


def check_bucket(client: GuardedClient, cfg: WormConfig) -> list[str]:
    """What is wrong with the bucket for a WORM copy (empty: Object Lock on, versioning on,
    default retention COMPLIANCE of at least the configured years)."""
    problems: list[str] = []
    try:
        lock = client.get_object_lock_configuration(Bucket=cfg.bucket)["ObjectLockConfiguration"]
    except Exception as exc:  # noqa: BLE001 - any S3 or network error is reported as such
        if getattr(exc, "response", None) is None:  # no answer at all: network, credentials
            return [f"bucket {cfg.bucket}: cannot reach S3 ({_s3_error(exc)})"]
        return [f"bucket {cfg.bucket}: Object Lock is not enabled ({_s3_error(exc)})"]
    if lock.get("ObjectLockEnabled") != "Enabled":
        problems.append(f"bucket {cfg.bucket}: Object Lock is not enabled")
    rule = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    if rule.get("Mode") != COMPLIANCE:
        problems.append(
            f"bucket {cfg.bucket}: default retention mode is {rule.get('Mode') or 'unset'}, "
            "not COMPLIANCE"
        )
    elif _default_years(lock.get("Rule")) < cfg.retention_years:
        problems.append(
            f"bucket {cfg.bucket}: default retention {_default_years(lock.get('Rule')):g} years "
            f"is below the configured {cfg.retention_years}"
        )
    try:
        status = client.get_bucket_versioning(Bucket=cfg.bucket).get("Status")
    except Exception as exc:  # noqa: BLE001
        status = _s3_error(exc)
    if status != "Enabled":
        problems.append(f"bucket {cfg.bucket}: versioning is {status or 'off'}, not Enabled")
    return problems


def check_high_water(db: Database, cfg: WormConfig) -> None:
    """Refuse a retention below the highest one objects were ever locked with."""
    hw = db_worm.high_water(db)
    if cfg.retention_years < hw:
        raise WormConfigError(
            f"[worm] retention_years = {cfg.retention_years} is below {hw}, the retention "
            f"objects were already locked with; retention can only be raised"
        )


# ------------------------------------------------------------------ what goes up


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leaves(log: TransparencyLog, first: int, last: int) -> bytes:
    with log.store.reading() as r:
        rows = r.query(
            "SELECT idx, entry FROM leaves WHERE idx >= ? AND idx <= ? ORDER BY idx", [first, last]
        )
    if [int(x["idx"]) for x in rows] != list(range(first, last + 1)):
        raise WormError(f"log entries {first}-{last} are not all stored")
    return b"".join(bytes(x["entry"]) + b"\n" for x in rows)


def _checkpoint(log: TransparencyLog, size: int) -> bytes:
    cp = log.checkpoint_at(size, cosigners=())
    if cp is None:
        raise WormError(f"no checkpoint of size {size}")
    return cp.note.encode()


def _covering_size(log: TransparencyLog, size: int) -> int | None:
    with log.store.reading() as r:
        v = r.scalar("SELECT MIN(size) FROM checkpoints WHERE size >= ?", [size])
    return None if v is None else int(v)


def _tsa_rows(db: Database) -> list[dict[str, Any]]:
    try:
        return db.query("SELECT checkpoint_size, token FROM tsa_anchors ORDER BY checkpoint_size")
    except Exception:  # noqa: BLE001 - an index older than issue 17 has no such table
        return []


def _packet_bytes(data_dir: Path, row: dict[str, Any]) -> bytes:
    path = data_dir / (row["path"] or f"packets/{row['sha256']}.zip")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WormError(f"packet {row['sha256']}: cannot read {path}: {exc.strerror}") from None


def _want(
    db: Database, log: TransparencyLog, data_dir: Path, cfg: WormConfig
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """(row, body) of every object not yet queued, oldest first; leaves before the checkpoint
    that covers them."""
    p = cfg.prefix
    have = {k: db_worm.keys_of(db, k) for k in ("checkpoints", "tsa", "packets")}
    latest = log.latest_checkpoint()
    top = latest.size if latest else 0
    sizes: set[int] = set()
    first = db_worm.last_leaf(db) + 1
    while first + cfg.leaf_batch <= top:
        last = first + cfg.leaf_batch - 1
        body = _leaves(log, first, last)
        sha = _sha(body)
        row = {"kind": "leaves", "key": f"{p}/leaves/{first}-{last}-{sha}.jsonl",
               "first_index": first, "last_index": last}  # fmt: skip
        yield {**row, "sha256": sha, "bytes": len(body)}, body
        cover = _covering_size(log, last + 1)
        if cover is not None:
            sizes.add(cover)
        first = last + 1
    tsa = _tsa_rows(db)
    sizes.update(int(t["checkpoint_size"]) for t in tsa)
    if top:
        sizes.add(top)
    for size in sorted(sizes):
        body = _checkpoint(log, size)
        sha = _sha(body)
        key = f"{p}/checkpoints/{size}-{sha}"
        if key not in have["checkpoints"]:
            yield {"kind": "checkpoints", "key": key, "sha256": sha, "bytes": len(body),
                   "last_index": size}, body  # fmt: skip
    for t in tsa:
        body = bytes(t["token"])
        sha = _sha(body)
        key = f"{p}/tsa/{int(t['checkpoint_size'])}-{sha}.tsr"
        if key not in have["tsa"]:
            yield {"kind": "tsa", "key": key, "sha256": sha, "bytes": len(body),
                   "last_index": int(t["checkpoint_size"])}, body  # fmt: skip
    for pk in db.query("SELECT * FROM packets ORDER BY stored_at, sha256"):
        key = f"{p}/packets/{pk['site_id']}/{pk['sha256']}.zip"
        if key not in have["packets"]:
            body = _packet_bytes(data_dir, pk)
            yield {"kind": "packets", "key": key, "sha256": _sha(body), "bytes": len(body),
                   "site_id": pk["site_id"]}, body  # fmt: skip


def _source(db: Database, log: TransparencyLog, data_dir: Path, row: dict[str, Any]) -> bytes:
    """The bytes of a pending row, re-read from where they live (a resumed pass)."""
    kind = row["kind"]
    if kind == "leaves":
        return _leaves(log, int(row["first_index"]), int(row["last_index"]))
    if kind == "checkpoints":
        return _checkpoint(log, int(row["last_index"]))
    if kind == "tsa":
        for t in _tsa_rows(db):
            if _sha(bytes(t["token"])) == row["sha256"]:
                return bytes(t["token"])
        raise WormError(f"{row['key']}: its TSA token is no longer stored")
    sha = row["key"].rsplit("/", 1)[-1].removesuffix(".zip")
    pk = db.one("SELECT * FROM packets WHERE sha256 = ?", [sha])
    if pk is None:
        raise WormError(f"{row['key']}: the packet is no longer stored")
    return _packet_bytes(data_dir, pk)


# ------------------------------------------------------------------ one pass


class Uploader:
    """One upload pass (``run``): queue what is new, put every pending object."""

    def __init__(
        self,
        db: Database,
        log: TransparencyLog,
        data_dir: Path,
        cfg: WormConfig,
        client: GuardedClient,
        progress: Progress | None = None,
        holder: str | None = None,
    ) -> None:
        self.db, self.log, self.data_dir, self.cfg, self.client = db, log, data_dir, cfg, client
        self.progress = progress or (lambda _m: None)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def run(self) -> dict[str, int]:
        """Upload everything due; returns {"uploaded", "skipped", "pending"}. Raises
        ``WormConfigError`` (retention below the high-water mark) or ``WormError`` (bucket not
        fit for WORM, or S3 unreachable) before anything is put."""
        check_high_water(self.db, self.cfg)
        problems = check_bucket(self.client, self.cfg)
        if problems:
            raise WormError("refusing to upload: " + "; ".join(problems))
        with self.db.write() as w:
            if not db_worm.take_lease(w, self.holder, int(time.time()), LEASE_S):
                self.progress("another server holds the upload lease; nothing done")
                return {"uploaded": 0, "skipped": 0, "pending": len(db_worm.pending(self.db))}
            if self.cfg.retention_years > db_worm.high_water(w):
                db_worm.set_state(w, db_worm.HIGH_WATER, str(self.cfg.retention_years))
        out = {"uploaded": 0, "skipped": 0}
        try:
            for row in db_worm.pending(self.db):  # a killed pass's objects first
                self._put(row, _source(self.db, self.log, self.data_dir, row), out)
            for row, body in _want(self.db, self.log, self.data_dir, self.cfg):
                if row["kind"] == "leaves":
                    self._same_range(row)
                with self.db.write() as w:
                    db_worm.add_pending(w, row)
                self._put(row, body, out)
        finally:
            with self.db.write() as w:
                db_worm.set_state(w, db_worm.LAST_PASS, str(int(time.time())))
                db_worm.drop_lease(w, self.holder)
        return {**out, "pending": len(db_worm.pending(self.db))}

    def _same_range(self, row: dict[str, Any]) -> None:
        other = self.db.one(
            "SELECT key FROM worm_objects WHERE kind = 'leaves' AND first_index = ?",
            [row["first_index"]],
        )
        if other is not None and other["key"] != row["key"]:
            raise WormError(
                f"log entries from {row['first_index']} hash differently from the WORM copy "
                f"{other['key']}: the log changed under it"
            )

    def _put(self, row: dict[str, Any], body: bytes, out: dict[str, int]) -> None:
        if _sha(body) != row["sha256"]:
            raise WormError(f"{row['key']}: its bytes changed since it was queued")
        b64 = base64.b64encode(bytes.fromhex(row["sha256"])).decode()
        bucket, key = self.cfg.bucket, row["key"]
        head = self._head(key)
        if head is not None:
            theirs = head.get("ChecksumSHA256") or (head.get("Metadata") or {}).get("sha256")
            if theirs not in (b64, row["sha256"]) or int(head["ContentLength"]) != len(body):
                raise WormError(f"{key} is already in the bucket with other bytes")
            until = head.get("ObjectLockRetainUntilDate")
            until_s = until.astimezone(UTC).isoformat() if isinstance(until, datetime) else ""
            with self.db.write() as w:
                db_worm.mark_uploaded(w, key, head.get("VersionId"), until_s)
            out["skipped"] += 1
            self.progress(f"{key}: already in the bucket")
            return
        until = datetime.now(UTC) + timedelta(days=365.25 * self.cfg.retention_years + 1)
        try:
            resp = self.client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=b64,
                ObjectLockMode=COMPLIANCE,
                ObjectLockRetainUntilDate=until,
                Metadata={"sha256": row["sha256"]},
            )
        except OsirisError:
            raise
        except Exception as exc:  # noqa: BLE001 - the row stays pending; the next pass retries
            raise WormError(f"{key}: upload failed ({_s3_error(exc)})") from None
        with self.db.write() as w:
            db_worm.mark_uploaded(w, key, resp.get("VersionId"), until.isoformat())
            db_worm.take_lease(w, self.holder, int(time.time()), LEASE_S)
        out["uploaded"] += 1
        self.progress(f"{key}: uploaded ({len(body)} bytes)")

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.cfg.bucket, Key=key, ChecksumMode="ENABLED")
        except Exception as exc:  # noqa: BLE001
            if _s3_error(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise WormError(f"{key}: cannot look it up ({_s3_error(exc)})") from None


def status(db: Database, cfg: WormConfig | None, client: GuardedClient | None) -> dict[str, Any]:
    """Per kind: uploaded/pending counts and bytes, newest upload; the high-water mark; the
    bucket check (None when no client could be made)."""
    kinds = {k: {"uploaded": 0, "pending": 0, "bytes": 0, "newest_upload": None} for k in KINDS}
    for r in db_worm.summary(db):
        k = kinds.setdefault(r["kind"], {"uploaded": 0, "pending": 0, "bytes": 0,
                                         "newest_upload": None})  # fmt: skip
        k[r["state"]] = int(r["n"])
        if r["state"] == "uploaded":
            k["bytes"] = int(r["bytes"])
            k["newest_upload"] = r["newest"]
    bucket = None
    if cfg is not None and client is not None:
        bucket = {"bucket": cfg.bucket, "problems": check_bucket(client, cfg)}
    return {
        "configured": cfg is not None,
        "bucket": bucket,
        "retention_years": cfg.retention_years if cfg else None,
        "retention_high_water": db_worm.high_water(db),
        "last_pass": db_worm.get_state(db, db_worm.LAST_PASS),
        "kinds": kinds,
    }


def tick(app: Any) -> dict[str, int] | None:
    """The server tick's job: one pass when ``cadence_s`` has passed since the last (any
    server's); the lease keeps two servers from uploading at once."""
    cfg: WormConfig | None = getattr(app.cfg, "worm", None)
    if cfg is None or cfg.cadence_s <= 0:
        return None
    last = db_worm.get_state(app.db, db_worm.LAST_PASS)
    if last is not None and time.time() - int(last) < cfg.cadence_s:
        return None
    return Uploader(app.db, app.log, app.cfg.data, cfg, make_client(cfg)).run()
