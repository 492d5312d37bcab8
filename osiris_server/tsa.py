"""RFC 3161 anchors: the log's signed checkpoints timestamped by an outside TSA.

Why: every checkpoint is signed by the MSP's log key on the MSP's clock. A token from an
independent Time-Stamp Authority proves a checkpoint — and every bundle under it — existed by the
TSA's time, which the MSP cannot move afterwards (issue 17 item 1; docs/server.md "Trusted
timestamps"). ``osiris_core.timestamp`` holds what is timestamped (the checkpoint BODY: the note
text up to and including its first blank line, SHA-256) and the token check an auditor runs.

``anchor(app, reason, size)`` sends a TimeStampReq (SHA-256 imprint, a fresh nonce, certReq)
as ``application/timestamp-query`` to ``[tsa] url``, and stores the reply in ``tsa_anchors``
only after it verified against the pinned ``ca_file`` chain, the body's digest and the nonce: a
reply that fails any of these is refused (logged ``tsa_refused``, nothing stored). One token per
(checkpoint size, TSA url): asking again returns the stored row without calling the TSA, and the
unique index settles two processes anchoring the same size at once.

``tick(app)`` is the cadence (``[tsa] cadence_s``, default daily), run by the watchdog thread:
when the newest checkpoint has no token and the newest token is older than the cadence, one
process — the one that wins the lease row ``watchdog_state['tsa']`` in one conditional UPDATE
(the ``db/lease.py`` pattern: a plain read, then a guarded write only one claimer passes) —
anchors it. A failed attempt keeps the lease for ``retry_s``, so a TSA outage costs one request
per ``retry_s`` across all servers, not one per tick per server.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from osiris_core import timestamp
from osiris_core.canonical import utc_now
from osiris_server.db.util import new_id
from osiris_server.http import HttpError

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.db.engine import Writer

DEFAULT_CADENCE_S = 86400
LEASE = "tsa"  # the watchdog_state row the cadence claims
REASONS = ("cadence", "packet", "request")
_NAME = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class TsaConfig:
    """``[tsa]`` of server.toml: where to ask, whose chain to believe, how often."""

    url: str
    ca_file: Path
    cadence_s: float = DEFAULT_CADENCE_S
    timeout_s: float = 10.0
    retry_s: float = 300.0

    def ca_pems(self) -> list[bytes]:
        return [self.ca_file.read_bytes()]


def parse_config(raw: Any, data: Path) -> TsaConfig:
    """``[tsa]`` → ``TsaConfig``; ``ValueError`` with the reason (config.py adds the file)."""
    if not isinstance(raw, dict):
        raise ValueError("[tsa] must be a table")
    unknown = set(raw) - {"url", "ca_file", "cadence_s", "timeout_s", "retry_s"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    url, ca = raw.get("url"), raw.get("ca_file")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("url must be an http:// or https:// URL")
    if not isinstance(ca, str) or not ca:
        raise ValueError("ca_file (the TSA's PEM certificate chain, pinned) is required")
    cfg = TsaConfig(url=url, ca_file=(data / ca) if not Path(ca).is_absolute() else Path(ca))
    for key in ("cadence_s", "timeout_s", "retry_s"):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"{key} must be a non-negative number")
            setattr(cfg, key, float(v))
    if not 0 < cfg.timeout_s <= 120:
        raise ValueError("timeout_s must be in (0, 120]")
    try:
        import rfc3161_client  # noqa: F401
    except ImportError:  # pragma: no cover - the extra is in every test venv
        raise ValueError("[tsa] needs rfc3161-client: pip install rfc3161-client") from None
    try:
        timestamp.load_pems(cfg.ca_pems())
    except OSError as e:
        raise ValueError(f"ca_file {cfg.ca_file}: {e.strerror}") from None
    except timestamp.TsaError as e:
        raise ValueError(f"ca_file {cfg.ca_file}: {e}") from None
    return cfg


def _emit(obj: dict[str, Any]) -> None:
    try:
        sys.stderr.write(json.dumps(obj, sort_keys=True) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _config(app: App) -> TsaConfig:
    cfg = getattr(app.cfg, "tsa", None)
    if cfg is None:
        raise HttpError(
            409, "E_TSA_NOT_CONFIGURED", "this server has no [tsa] section: no TSA to ask"
        )
    return cfg


def _row_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "size": int(row["checkpoint_size"]),
        "sha256": row["checkpoint_sha256"],
        "tsa_url": row["tsa_url"],
        "gen_time": row["gen_time"],
        "reason": row["reason"],
        "created_at": row["created_at"],
        "token": base64.b64encode(bytes(row["token"])).decode(),
    }


def stored(app: App, size: int, url: str | None = None) -> dict[str, Any] | None:
    """The stored anchor of checkpoint ``size`` (by ``url``; else the oldest of any TSA)."""
    sql = "SELECT * FROM tsa_anchors WHERE checkpoint_size = ?"
    args: list[Any] = [size]
    if url is not None:
        sql += " AND tsa_url = ?"
        args.append(url)
    row = app.db.one(sql + " ORDER BY created_at, id LIMIT 1", args)
    return _row_out(row) if row is not None else None


def _ask(cfg: TsaConfig, body: bytes) -> tuple[bytes, int]:
    """POST one TimeStampReq; the DER reply and the nonce we sent. ``HttpError`` 503 when the
    TSA cannot be reached or answers anything but a timestamp reply."""
    import rfc3161_client as r

    req = (
        r.TimestampRequestBuilder()
        .data(body)
        .hash_algorithm(r.HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    try:
        with httpx.Client(timeout=cfg.timeout_s, follow_redirects=False, trust_env=False) as c:
            resp = c.post(
                cfg.url,
                content=req.as_bytes(),
                headers={"Content-Type": "application/timestamp-query"},
            )
    except (httpx.HTTPError, OSError, ValueError) as e:
        raise HttpError(
            503, "E_TSA_UNAVAILABLE", f"the TSA at {cfg.url} is unreachable: {type(e).__name__}"
        ) from None
    if resp.status_code != 200 or len(resp.content) > timestamp.MAX_TOKEN_BYTES:
        raise HttpError(
            503, "E_TSA_UNAVAILABLE", f"the TSA at {cfg.url} answered HTTP {resp.status_code}"
        )
    return resp.content, int(req.nonce)


def anchor(app: App, reason: str, size: int | None = None) -> dict[str, Any]:
    """Timestamp checkpoint ``size`` (None: the newest) with the configured TSA and store the
    token; returns the stored row (the existing one if that size is already anchored)."""
    cfg = _config(app)
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}")
    if size is None:
        app.log.refresh()
        latest = app.log.latest_checkpoint()
        if latest is None:  # pragma: no cover - a log always has its first checkpoint
            raise HttpError(404, "E_NOT_FOUND", "checkpoint not found")
        size = latest.size
    have = stored(app, size, cfg.url)
    if have is not None:
        return have
    cp = app.log.checkpoint_at(size, cosigners=())
    if cp is None:
        raise HttpError(404, "E_NOT_FOUND", f"no checkpoint of size {size}")
    body = timestamp.checkpoint_body(cp.note)
    der, nonce = _ask(cfg, body)
    try:
        info = timestamp.verify_token(der, body, cfg.ca_pems(), nonce=nonce)
    except (timestamp.TsaError, OSError) as e:
        _emit({"event": "tsa_refused", "url": cfg.url, "size": size, "error": str(e)[:300]})
        raise HttpError(
            502, "E_TSA_BAD_REPLY", f"the TSA's reply did not verify and was not stored: {e}"
        ) from None
    with app.db.write() as w:
        w.execute(
            "INSERT INTO tsa_anchors (id, checkpoint_size, checkpoint_sha256, token, tsa_url,"
            " gen_time, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (checkpoint_size, tsa_url) DO NOTHING",
            [new_id("tsa"), size, info["sha256"], der, cfg.url, info["gen_time"], reason,
             utc_now()],
        )  # fmt: skip
    row = stored(app, size, cfg.url)
    assert row is not None
    _emit({"event": "tsa_anchored", "size": size, "gen_time": row["gen_time"], "reason": reason})
    return row


def _claim(w: Writer, now: int, until: int) -> bool:
    """Win the cadence lease (``watchdog_state`` row 'tsa': since_epoch = lease end)."""
    row = w.one("SELECT since_epoch FROM watchdog_state WHERE name = ?", [LEASE])
    if row is None:
        w.insert(
            "watchdog_state",
            {"name": LEASE, "tick_epoch": now, "since_epoch": until, "ticked_by": _NAME},
        )
        return True
    return bool(
        w.execute(
            "UPDATE watchdog_state SET tick_epoch = ?, since_epoch = ?, ticked_by = ?"
            " WHERE name = ? AND since_epoch <= ?",
            [now, until, _NAME, LEASE, now],
        )
    )


def due(app: App, now: float | None = None) -> int | None:
    """The checkpoint size the cadence should anchor now, or None (nothing due)."""
    cfg = getattr(app.cfg, "tsa", None)
    if cfg is None or cfg.cadence_s <= 0:
        return None
    latest = app.log.latest_checkpoint()
    if latest is None or latest.size == 0 or stored(app, latest.size, cfg.url) is not None:
        return None
    newest = app.db.scalar("SELECT MAX(created_at) FROM tsa_anchors WHERE tsa_url = ?", [cfg.url])
    clock = time.time() if now is None else now
    if newest is not None:
        from datetime import datetime

        age = clock - datetime.fromisoformat(newest.replace("Z", "+00:00")).timestamp()
        if age < cfg.cadence_s:
            return None
    return latest.size


def tick(app: App, now: float | None = None) -> dict[str, Any] | None:
    """The cadence (run by the watchdog thread): anchor the newest checkpoint when due and this
    process won the lease; the stored row, or None. A TSA failure is logged and retried after
    ``retry_s`` by whichever server claims the lease then."""
    size = due(app, now)
    if size is None:
        return None
    cfg: TsaConfig = app.cfg.tsa  # type: ignore[attr-defined]
    clock = int(time.time() if now is None else now)
    until = clock + max(int(cfg.retry_s), int(cfg.timeout_s) + 1)
    with app.db.write() as w:
        if not _claim(w, clock, until):
            return None
    try:
        return anchor(app, "cadence", size)
    except HttpError as e:
        _emit({"event": "tsa_tick_failed", "code": e.code, "message": str(e)[:300]})
        return None


__all__ = ["TsaConfig", "anchor", "due", "parse_config", "stored", "tick"]
