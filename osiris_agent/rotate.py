"""``osiris-agent rotate-key``: replace the appliance's signing key, with the server's consent.

Steps (the key files and ``state.db`` meta are described in ``keyring.py``):

1. Take ``state.db``'s write lock (``BEGIN IMMEDIATE``, the lock :meth:`Outbox.record` signs
   under) and keep it until the end: no process can sign a bundle meanwhile, so the chain head
   read now stays the head.
2. Generate the new key (``osiris/appliance/<id>``), write it to ``appliance.key.new`` and the
   statement (``osiris_core.trust.make_rotation``, signed by the old key) to
   ``appliance.key.rotation``, both 0600 and fsynced, before the server hears of them.
3. Sign, with the old key, one ``evidence_pipeline`` bundle announcing the rotation (seq
   ``head + 1``), so the rotation is evidence in the chain itself and every key of the history
   signs at least one bundle (``osiris_core.trust.key_epochs`` refuses an epoch that signs
   none); ``effective_seq`` = the chain head after it + 1 = ``head + 2``, exactly the first
   bundle the new key will sign. It is part of the held transaction: rolled back on failure.
4. ``POST /appliance/key-rotation`` ``{"rotation": statement}``.
5. Only after a 200 that names the new key and ``effective_seq``: append the statement to
   ``meta.key_history`` and set ``meta.signing_vkey`` in the held transaction, commit, then move
   the files (old key kept as ``appliance.key.retired-<n>``). A running agent's next
   :meth:`Outbox.record` sees ``signing_vkey`` changed and reloads the key; it never signs with
   the old key at or past ``effective_seq``.

Unreachable server (exit 3) or refusal (exit 1): rolled back, the new key and the statement are
deleted, nothing changed. A crash (kill -9, power) between 2 and 5 leaves the pending statement:
the next ``rotate-key`` re-sends that same statement while the chain has not moved, so a server
that recorded it answers again and the rotation completes.

The write lock is held during one HTTP request, so the request's timeout is short
(:data:`TIMEOUT_S`, twice at most with the client's keep-alive retry) and well under the 30 s
other writers wait for the lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osiris_core import canonical
from osiris_core.controls import controls_for
from osiris_core.errors import OsirisError
from osiris_core.keys import Signer, appliance_key_name, load_private_key, write_private_key
from osiris_core.trust import AttestationError, fingerprint, make_rotation, open_rotation

from . import AGENT_VERSION, client_cert, keyring
from .client import ServerClient
from .config import AgentConfig
from .enroll import read_pins
from .outbox import Outbox
from .state import StateDB

log = logging.getLogger("osiris.agent.rotate")

ENDPOINT = "/appliance/key-rotation"
ROTATION_CHECK = "evidence_pipeline"
TIMEOUT_S = 10.0


class RotateError(OsirisError):
    """Rotation cannot start here (decommissioned, bad state): a usage error, exit 2."""

    code = "E_ROTATE"


class RotationRefused(OsirisError):
    """The server answered, but not with a usable consent: exit 1, nothing changed."""

    code = "E_ROTATION_REFUSED"


@dataclass
class RotationResult:
    number: int  # this is the n-th rotation of the appliance
    effective_seq: int
    old_vkey: str
    new_vkey: str
    resumed: bool  # an interrupted rotation's statement was re-sent


def _check_answer(answer: Any, statement: dict[str, Any]) -> None:
    doc = statement["rotation"]
    if not isinstance(answer, dict):
        raise RotationRefused("the server's key-rotation answer is not an object")
    got = (answer.get("appliance_id"), answer.get("signing_vkey"), answer.get("effective_seq"))
    want = (doc["appliance_id"], doc["new_vkey"], doc["effective_seq"])
    if got != want:
        raise RotationRefused(
            "the server's key-rotation answer does not name our new key and effective_seq "
            f"(got appliance {got[0]!r}, effective_seq {got[2]!r}); nothing changed"
        )


def rotate_key(cfg: AgentConfig, *, timeout_s: float = TIMEOUT_S) -> RotationResult:
    """Rotate the signing key (module docstring). Raises ``RotateError`` (usage),
    ``ServerUnreachable``, ``AuthRefused``, ``ServerRefused`` / :class:`RotationRefused`
    (nothing changed in all of these), ``KeyFormatError`` / ``KeyMismatch`` (bad key files)."""
    state_dir = Path(cfg.agent.state_dir)
    pins = read_pins(state_dir)
    app_id, site_id = pins["appliance_id"], pins["site_id"]
    key_file = Path(cfg.agent.key_file)
    token = Path(cfg.agent.token_file).read_text().strip()
    client = ServerClient(
        cfg.server.url, token, cfg.server.ca_file, timeout=timeout_s,
        client_cert=client_cert.paths(cfg),
    )  # fmt: skip
    db = StateDB.open_dir(state_dir)
    try:
        if db.get("decommissioned") is not None:
            raise RotateError(
                f"this appliance was decommissioned (chain closed at seq "
                f"{db.get('decommissioned')}); its key is not rotated any more"
            )
        old = keyring.signer_for(key_file, db)  # also finishes a committed rotation's files
        with db.tx():  # the outbox's write lock: nothing is signed until we are done
            history = keyring.key_history(db.get(keyring.HISTORY_KEY))
            current = db.get(keyring.SIGNING_KEY)
            if current != old.vkey:  # rotated by another process since we loaded the key
                old = keyring.load_signer(key_file, current)
            outbox = Outbox(db, cfg.outbox.max_entries, cfg.outbox.max_bytes)
            seq, _head = outbox.head()
            # seq + 1: the old key's last bundle, announcing the rotation (so every key in the
            # history signs at least one bundle); seq + 2 = the head after it, plus one.
            effective = seq + 2
            statement, new, resumed = _statement(key_file, old, app_id, site_id, effective)
            try:
                _announce(outbox, cfg, old, app_id, site_id, new, effective, db)
                answer = client.post(ENDPOINT, {"rotation": statement})
                _check_answer(answer, statement)
            except BaseException:
                keyring.discard_pending(key_file)
                raise
            history.append(statement)
            db.set_json(keyring.HISTORY_KEY, history)
            db.set(keyring.SIGNING_KEY, new.vkey)
        keyring.finish_rotation(key_file, len(history), new.vkey)
        return RotationResult(len(history), effective, old.vkey, new.vkey, resumed)
    finally:
        client.close()
        db.close()


def _announce(
    outbox: Outbox,
    cfg: AgentConfig,
    old: Signer,
    app_id: str,
    site_id: str,
    new: Signer,
    effective_seq: int,
    db: StateDB,
) -> None:
    """The old key's last bundle: evidence of the rotation inside the chain itself. Written in
    the held transaction, so it is rolled back with everything else if the server refuses."""
    now = canonical.utc_now()
    policy = db.get_json("policy") or {}
    outbox.record(
        old, app_id, site_id=site_id, host_id=app_id, check=ROTATION_CHECK,
        controls=list(controls_for(ROTATION_CHECK)), outcome="compliant", tier="monitor",
        action_taken=f"appliance signing key rotated: bundles from seq {effective_seq} on are "
        f"signed by key {fingerprint(new.vkey)} ({new.name}+{new.key_id_hex})",
        pre_state={"observed": {"signing_key": fingerprint(old.vkey)}},
        post_state={"observed": {"signing_key": fingerprint(new.vkey),
                                 "effective_seq": effective_seq}},
        started_at=now, finished_at=now,
        clock={"ntp_ok": False, "offset_ms": None, "source": "unchecked"},
        agent_version=AGENT_VERSION, deployment_mode=cfg.deployment.mode,
        reseller_id=cfg.deployment.reseller_id,
        policy_version=str(policy.get("policy_version") or "default"),
        ruleset_hash=policy.get("ruleset_hash"),
    )  # fmt: skip


def _statement(
    key_file: Path, old: Signer, app_id: str, site_id: str, effective_seq: int
) -> tuple[dict[str, Any], Signer, bool]:
    """The statement to send: an interrupted rotation's, if it still fits exactly (same old key,
    chain not moved), else a new key and a new statement — both durable before returning."""
    pending = keyring.read_pending(key_file)
    new_path = keyring.new_key_path(key_file)
    if pending is not None:
        try:
            doc = open_rotation(pending)
            new = load_private_key(new_path)
            fits = (
                doc["old_vkey"] == old.vkey
                and doc["new_vkey"] == new.vkey
                and doc["effective_seq"] == effective_seq
                and doc["appliance_id"] == app_id
            )
        except (AttestationError, OsirisError, OSError):
            fits = False
        if fits:
            log.warning("re-sending the interrupted rotation to effective_seq %d", effective_seq)
            return pending, new, True
        log.warning("discarding an interrupted rotation that no longer fits the chain")
        keyring.discard_pending(key_file)
    new = Signer.generate(appliance_key_name(app_id))
    statement = make_rotation(
        old, new, appliance_id=app_id, site_id=site_id, effective_seq=effective_seq,
        at=canonical.utc_now(),
    )  # fmt: skip
    write_private_key(new_path, new)
    keyring.write_pending(key_file, statement)
    return statement, new, False
