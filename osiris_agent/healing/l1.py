"""L1: deterministic rules, as data, signed by the server; plus their cooldown/attempt memory.

Why signed: a rule decides what runs on a clinic's servers, so a rule set that arrives at check-in
is accepted only with a valid signature by the server's order key (pinned at enrolment) over
``canonical({"rules": [...], "version": ...})``. Anything else — unsigned, a bad signature, an
unknown runbook, check or operator — is refused *as a whole* with a :class:`RuleSetRefused`
naming the reason, so the agent files an incident (lesson A6: the old loader silently dropped 15
of 28 rules). Actions can only name catalogue runbooks (``run_runbook``), ``escalate`` or
``alert``: there is no "run this command" action.

Effective rules = the server's rules plus every baseline rule the server did not override by id.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from osiris_core import canonical
from osiris_core.catalog import Catalog, Rule, match_rules
from osiris_core.catalog.rules import parse_rule
from osiris_core.errors import OsirisError, SchemaError

from ..state import StateDB

MAX_RULES = 2000


class RuleSetRefused(OsirisError):
    """A signed rule set that must not be used; ``str(e)`` says why."""

    code = "E_RULES"


def sign_rules(rules: list[dict[str, Any]], version: str, signer: Any) -> dict[str, Any]:
    """The server side of :func:`verify_signed_rules` (used by the server and by tests)."""
    msg = canonical.dumps({"rules": rules, "version": version})
    return {
        "rules": rules,
        "version": version,
        "sig": {
            "alg": "ed25519",
            "key_id": signer.key_id_hex,
            "value": base64.b64encode(signer.sign(msg)).decode("ascii"),
        },
    }


def verify_signed_rules(signed: Any, order_verifier: Any, catalog: Catalog) -> list[Rule]:
    """Check the signature, then parse every rule against the catalogue; all or nothing.

    Raises :class:`RuleSetRefused` (never another exception) for anything unacceptable.
    """
    if not isinstance(signed, Mapping):
        raise RuleSetRefused("rule set is not an object")
    if set(signed) != {"rules", "version", "sig"}:
        if "sig" not in signed:
            raise RuleSetRefused("rule set is unsigned")
        raise RuleSetRefused("rule set must have exactly rules, version and sig")
    sig, rules, version = signed["sig"], signed["rules"], signed["version"]
    if not isinstance(sig, Mapping) or set(sig) != {"alg", "key_id", "value"}:
        raise RuleSetRefused("rule set signature must have alg, key_id and value")
    if sig["alg"] != "ed25519":
        raise RuleSetRefused(f"rule set signature algorithm {sig['alg']!r} is not ed25519")
    if order_verifier is None:
        raise RuleSetRefused("no server order key is pinned; cannot verify rules")
    if sig["key_id"] != order_verifier.key_id_hex:
        raise RuleSetRefused(f"rule set signed by unknown key {str(sig['key_id'])[:16]!r}")
    if not isinstance(sig["value"], str):
        raise RuleSetRefused("rule set signature value is not a string")
    try:
        raw = base64.b64decode(sig["value"], validate=True)
    except (binascii.Error, ValueError):
        raise RuleSetRefused("rule set signature is not base64") from None
    if not isinstance(version, str) or not version or len(version) > 128:
        raise RuleSetRefused("rule set version must be a non-empty string")
    if not isinstance(rules, list):
        raise RuleSetRefused("rule set rules must be a list")
    if len(rules) > MAX_RULES:
        raise RuleSetRefused(f"rule set has more than {MAX_RULES} rules")
    try:
        msg = canonical.dumps({"rules": rules, "version": version})
    except OsirisError as exc:
        raise RuleSetRefused(f"rule set is not canonical JSON data: {exc}") from None
    if len(raw) != 64 or not order_verifier.verify(msg, raw):
        raise RuleSetRefused("rule set signature does not verify")
    out: list[Rule] = []
    seen: set[str] = set()
    for i, raw_rule in enumerate(rules):
        try:
            rule = parse_rule(raw_rule, catalog, f"signed rules v{version} #{i}")
        except SchemaError as exc:
            raise RuleSetRefused(f"rule set v{version} refused: {exc}") from None
        if rule.id in seen:
            raise RuleSetRefused(f"rule set v{version} refused: rule {rule.id} appears twice")
        seen.add(rule.id)
        out.append(rule)
    return out


def effective_rules(server_rules: Iterable[Rule], baseline: Iterable[Rule]) -> list[Rule]:
    """Server rules plus baseline rules not overridden by id."""
    server = list(server_rules)
    ids = {r.id for r in server}
    return server + [r for r in baseline if r.id not in ids]


def candidates(rules: Iterable[Rule], result: Mapping[str, Any]) -> list[Rule]:
    """Matching rules for a check result, lowest priority number first."""
    return match_rules(rules, result)


class RuleMemory:
    """Per (tier/rule, host, runbook): when it last fired and how many tries in a row failed.

    Kept in the agent's one store (``state.db``'s ``heal_memory``; a store of its own in memory
    in tests) so a restart does not reset cooldowns and re-run a runbook that just failed — and
    so a firing commits in the same transaction as its bundle (:meth:`tx`).
    """

    def __init__(self, db_path: str | StateDB = ":memory:") -> None:
        self._owned = not isinstance(db_path, StateDB)
        self.db = StateDB(db_path) if not isinstance(db_path, StateDB) else db_path

    @contextmanager
    def tx(self) -> Iterator[Any]:
        """One transaction of the store (joins an outer one): a firing and its evidence."""
        with self.db.tx() as conn:
            yield conn

    def get(self, name: str, host_id: str, runbook_id: str) -> tuple[float | None, int]:
        row = self.db.conn.execute(
            "SELECT last_ts, attempts FROM heal_memory WHERE name = ? AND host_id = ?"
            " AND runbook_id = ?",
            (name, host_id, runbook_id),
        ).fetchone()
        return (row[0], row[1]) if row else (None, 0)

    def fired(self, name: str, host_id: str, runbook_id: str, ts: float, outcome: str) -> None:
        """Record a firing. A failed try counts against max attempts, a heal clears the count,
        anything else (deferred, alert, escalated) leaves it as it was."""
        _, attempts = self.get(name, host_id, runbook_id)
        if outcome in ("failed", "reverted"):
            attempts += 1
        elif outcome == "healed":
            attempts = 0
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO heal_memory(name, host_id, runbook_id, last_ts, attempts)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(name, host_id, runbook_id)"
                " DO UPDATE SET last_ts = excluded.last_ts, attempts = excluded.attempts",
                (name, host_id, runbook_id, ts, attempts),
            )

    def resolved(self, host_id: str, runbook_id: str) -> None:
        """The drift is gone: forget failed attempts (cooldowns stay, so flapping is damped)."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE heal_memory SET attempts = 0 WHERE host_id = ? AND runbook_id = ?",
                (host_id, runbook_id),
            )

    def close(self) -> None:
        if self._owned:
            self.db.close()
