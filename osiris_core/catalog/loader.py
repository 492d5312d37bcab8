"""Load the packaged catalogue once: checks.toml, runbooks/*/manifest.toml, rules/*.toml.

Why one loader: every layer asks this module for ids, so the set of valid ids is defined in one
place. Loading is pure (package files only, no network) and cached.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

from osiris_core.catalog.model import Check, Runbook, parse_check, parse_manifest
from osiris_core.catalog.rules import Rule, parse_rules
from osiris_core.controls import CONTROLS
from osiris_core.errors import SchemaError


@dataclass(frozen=True)
class Catalog:
    """All checks, runbooks and baseline rules, keyed by their ids."""

    checks: Mapping[str, Check]
    runbooks: Mapping[str, Runbook]
    rules: list[Rule] = field(default_factory=list)
    # Former check id -> its check's id (``Check.aliases``), for folding old evidence.
    aliases: Mapping[str, str] = field(default_factory=dict)

    def canonical_check(self, check_id: str) -> str:
        """The id a bundle's ``check`` counts under: an alias folds into its check's id; any
        other string (a current id, or one the catalogue never knew) is returned unchanged, so
        a reader of old evidence never drops a bundle it cannot place."""
        return self.aliases.get(check_id, check_id)

    def runbook(self, runbook_id: str) -> Runbook:
        """The runbook with this id; ``SchemaError`` if the catalogue does not define it."""
        try:
            return self.runbooks[runbook_id]
        except (KeyError, TypeError):
            raise SchemaError(f"unknown runbook id: {runbook_id!r}") from None

    def check(self, check_id: str) -> Check:
        """The check with this id or alias; ``SchemaError`` if the catalogue defines neither."""
        try:
            return self.checks[self.aliases.get(check_id, check_id)]
        except (KeyError, TypeError):
            raise SchemaError(f"unknown check id: {check_id!r}") from None

    def runbooks_for(self, check_id: str) -> list[Runbook]:
        """Runbooks whose detect phase reports on ``check_id``, sorted by id."""
        return sorted((r for r in self.runbooks.values() if r.check == check_id), key=_rid)

    def rules_for(self, check_id: str) -> list[Rule]:
        """Baseline rules for ``check_id``, lowest priority number first."""
        return sorted((r for r in self.rules if r.check == check_id), key=_prio)

    def parse_rules_toml(self, text: str, source: str = "rules") -> list[Rule]:
        """Validate an extra rules file (e.g. signed server rules) against this catalogue."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SchemaError(f"{source}: not valid TOML: {exc}") from None
        return parse_rules(data, self, source)


def _rid(r: Runbook) -> str:
    return r.id


def _prio(r: Rule) -> tuple[int, str]:
    return (r.priority, r.id)


def _toml(node: Traversable, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(node.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{label}: not valid TOML: {exc}") from None


def load_from(root: Traversable) -> Catalog:
    """Load and cross-check a catalogue rooted at ``root`` (used by tests on broken copies)."""
    checks_doc = _toml(root.joinpath("checks.toml"), "checks.toml")
    checks: dict[str, Check] = {}
    for raw in checks_doc.get("check", []):
        chk = parse_check(raw)
        if chk.id in checks:
            raise SchemaError(f"checks.toml: check {chk.id} defined twice")
        # The citations must be controls the report knows (osiris_core.controls), or the
        # packet would count evidence under a control it cannot name.
        unknown = [c for c in chk.controls if c not in CONTROLS]
        if unknown:
            raise SchemaError(f"checks.toml: check {chk.id} cites unknown control(s) {unknown}")
        checks[chk.id] = chk
    aliases = _aliases(checks)
    runbooks: dict[str, Runbook] = {}
    for d in sorted(root.joinpath("runbooks").iterdir(), key=lambda t: t.name):
        if not d.is_dir():
            continue
        manifest = d.joinpath("manifest.toml")
        if not manifest.is_file():
            raise SchemaError(f"runbook {d.name}: no manifest.toml")
        rb = parse_manifest(_toml(manifest, f"runbook {d.name}/manifest.toml"), d)
        chk = checks.get(rb.check)
        if chk is None:
            raise SchemaError(f"runbook {rb.id}: unknown check {rb.check!r}")
        if rb.platform not in chk.platforms:
            raise SchemaError(f"runbook {rb.id}: check {chk.id} is not run on {rb.platform}")
        stray = sorted(set(rb.controls) - set(chk.controls))
        if stray:
            raise SchemaError(f"runbook {rb.id}: cites {stray} which check {chk.id} does not")
        runbooks[rb.id] = rb
    cat = Catalog(MappingProxyType(checks), MappingProxyType(runbooks), [], aliases)
    rules: list[Rule] = []
    rules_dir = root.joinpath("rules")
    for f in sorted(rules_dir.iterdir(), key=lambda t: t.name):
        if f.name.endswith(".toml"):
            rules.extend(parse_rules(_toml(f, f"rules/{f.name}"), cat, f"rules/{f.name}"))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise SchemaError("rules: a rule id appears in two files")
    return Catalog(cat.checks, cat.runbooks, rules, aliases)


def _aliases(checks: Mapping[str, Check]) -> Mapping[str, str]:
    """Former id -> check id; an alias must name one check and never shadow a current id."""
    out: dict[str, str] = {}
    for chk in checks.values():
        for alias in chk.aliases:
            if alias in checks:
                raise SchemaError(f"checks.toml: alias {alias} of {chk.id} is a current check id")
            if alias in out:
                raise SchemaError(f"checks.toml: alias {alias} names {out[alias]} and {chk.id}")
            out[alias] = chk.id
    return MappingProxyType(out)


@functools.cache
def load_catalog() -> Catalog:
    """The packaged catalogue, loaded and validated once per process."""
    return load_from(resources.files("osiris_core.catalog"))


def check_aliases() -> Mapping[str, str]:
    """The packaged catalogue's former check ids -> check ids: what readers of evidence (the
    verifier, packets, drift reports) fold so that a bundle signed under an old id counts once,
    under its check's current id."""
    return load_catalog().aliases


def ids_in_use_check(
    ids: Iterable[str], kind: str = "any", catalog: Catalog | None = None
) -> set[str]:
    """Return the ids from ``ids`` that the catalogue does not define.

    ``kind`` narrows the namespace: ``"runbook"``, ``"check"``, ``"rule"`` or ``"any"``. Layers
    (agent, server, console, docs) call this in their tests with every id they use.
    """
    cat = catalog or load_catalog()
    spaces = {
        "runbook": set(cat.runbooks),
        "check": set(cat.checks),
        "rule": {r.id for r in cat.rules},
    }
    if kind == "any":
        known = set().union(*spaces.values())
    elif kind in spaces:
        known = spaces[kind]
    else:
        raise SchemaError(f"unknown id kind {kind!r}")
    return {i for i in ids if i not in known}
