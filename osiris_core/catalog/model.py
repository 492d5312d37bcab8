"""Checks, runbooks and their parameter schemas as validated, immutable data.

Why data and not code: the agent, the evidence, the rules, the server, the console and the docs
must all use the same ids (lessons A5/A6). A manifest that does not validate fails the load with
a ``SchemaError`` naming the file and field, so a typo can never silently drop a runbook.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any

from osiris_core import ids
from osiris_core import severity as severity_scale
from osiris_core.catalog import manifest_docs
from osiris_core.catalog.bounds import Bound, CheckedParams, TrustContext, parse_bound
from osiris_core.errors import SchemaError

PLATFORMS = ("windows", "linux", "nixos")
SEVERITIES = severity_scale.SEVERITIES  # the one scale (osiris_core/severity.py)
PHASES = ("detect", "remediate", "verify", "rollback")
PARAM_TYPES = ("str", "int", "bool")
STATUSES = ("compliant", "drift", "error")
# Facts the agent measures itself every cycle; a check naming one (``fact = …``) is judged from
# it on the appliance instead of by a detect script there (osiris_agent/facts.py).
FACTS = ("appliance.clock",)

# The one id grammar (osiris_core.ids); the catalogue's runbook ids and citations are its strict
# authoring subsets of what a signed document may carry.
RUNBOOK_ID_RE = re.compile(f"^{ids.CATALOG_RUNBOOK_ID.pattern}$")
CHECK_ID_RE = re.compile(f"^{ids.CHECK_ID.pattern}$")
PARAM_NAME_RE = re.compile(f"^{ids.PARAM_NAME.pattern}$")
CITATION_RE = re.compile(f"^{ids.CATALOG_CITATION.pattern}$")
MAX_STR_LEN = 512


def script_ext(platform: str) -> str:
    """The script file extension for a platform: PowerShell on Windows, bash elsewhere."""
    return "ps1" if platform == "windows" else "sh"


@dataclass(frozen=True, slots=True)
class Param:
    """One runbook parameter: its type, default, form (pattern, min/max) and semantic bound.

    ``check`` is context-free: type, form and the bound's meaning (``bounds.Bound.check``). A
    trust-redirecting parameter is judged against the site's allow-list as well, by
    :meth:`Runbook.validate_params` with a :class:`~osiris_core.catalog.bounds.TrustContext`.
    """

    name: str
    type: str
    default: Any
    description: str
    pattern: str | None = None
    min: int | None = None
    max: int | None = None
    # Always set for a manifest param (the loader refuses one without); ``None`` only for a
    # Param built in code, which then has no semantic check beyond its pattern.
    bound: Bound | None = None

    @property
    def trusted(self) -> bool:
        return self.bound is not None and self.bound.trusted

    @property
    def set_by(self) -> str:
        return self.bound.set_by if self.bound is not None else "operator"

    def _bound(self, value: Any, where: str) -> None:
        if self.bound is not None:
            self.bound.check(value, where, self.min, self.max)

    def check(self, value: Any) -> Any:
        """Return ``value`` if it fits this schema; ``SchemaError`` naming the param otherwise."""
        where = f"param {self.name!r}"
        if self.type == "bool":
            if not isinstance(value, bool):
                raise SchemaError(f"{where}: expected bool, got {type(value).__name__}")
            self._bound(value, where)
            return value
        if self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise SchemaError(f"{where}: expected int, got {type(value).__name__}")
            if self.min is not None and value < self.min:
                raise SchemaError(f"{where}: {value} is below the minimum {self.min}")
            if self.max is not None and value > self.max:
                raise SchemaError(f"{where}: {value} is above the maximum {self.max}")
            self._bound(value, where)
            return value
        if not isinstance(value, str):
            raise SchemaError(f"{where}: expected str, got {type(value).__name__}")
        if len(value) > MAX_STR_LEN:
            raise SchemaError(f"{where}: longer than {MAX_STR_LEN} characters")
        # Every str param has a pattern (enforced at load); fullmatch so that a trailing
        # "; rm -rf /" cannot ride along after a valid prefix, and no newlines sneak past "$".
        if self.pattern is None or re.fullmatch(self.pattern, value) is None:
            raise SchemaError(f"{where}: value does not match the pattern {self.pattern!r}")
        self._bound(value, where)
        return value

    def describe_bound(self) -> str:
        if self.bound is None:
            return "no semantic bound (not a manifest parameter)"
        return self.bound.describe(self.min, self.max)


@dataclass(frozen=True, slots=True)
class Check:
    """A drift check id: what is measured, on which platforms, and which controls it proves."""

    id: str
    name: str
    description: str
    platforms: tuple[str, ...]
    controls: tuple[str, ...]
    # Former ids of this check. An id signed into evidence is never renamed (the signature
    # covers it); a renamed check keeps its old id here, and the verifier, packets and drift
    # reports count a bundle carrying an alias under ``id`` (docs/runbooks.md, Id scheme).
    aliases: tuple[str, ...] = ()
    # An agent-provided fact (``FACTS``) that judges this check on the appliance, or None.
    fact: str | None = None


@dataclass(frozen=True)
class Runbook:
    """One catalogue runbook: manifest fields plus access to its phase scripts."""

    id: str
    name: str
    description: str
    platform: str
    category: str
    check: str
    severity: str
    controls: tuple[str, ...]
    disruptive: bool
    requires_maintenance_window: bool
    reboot: bool
    phases: tuple[str, ...]
    default_enabled: bool
    params: Mapping[str, Param]
    what_it_changes: str
    observed_keys: tuple[str, ...]
    directory: Traversable = field(repr=False, compare=False)
    # What the runbook refuses to do (escalating instead), what its rollback restores (or why
    # it has none), and where each behaviour was proven: shown per runbook in docs/runbooks.md
    # so a clinic's sysadmin can judge it before it runs on their host.
    refuses: str = ""
    rollback_note: str = ""
    proven: Mapping[str, str] = field(default_factory=dict)
    # The severity of the incident the agent raises when this runbook escalates to a person (L3):
    # stated per runbook, not derived from its check's name, so what alerts is reviewable here.
    escalation_severity: str = "high"

    @property
    def ext(self) -> str:
        return script_ext(self.platform)

    def script_name(self, phase: str) -> str:
        return f"{phase}.{self.ext}"

    def script(self, phase: str) -> str:
        """The phase script's text; ``SchemaError`` for a phase the manifest does not claim."""
        if phase not in self.phases:
            raise SchemaError(f"runbook {self.id} has no {phase!r} phase")
        return self.directory.joinpath(self.script_name(phase)).read_text(encoding="utf-8")

    def validate_params(
        self, params: Mapping[str, Any] | None, context: TrustContext | None = None
    ) -> CheckedParams:
        """THE parameter validator (server and agent alike): fill defaults and judge every
        value — type, form, semantic bound and, for trust-redirecting parameters, the site's
        allow-list in ``context`` (or the one a :class:`CheckedParams` carries). Unknown or bad
        params raise ``SchemaError`` naming the parameter; nothing is ever clamped."""
        if context is None and isinstance(params, CheckedParams) and params.runbook_id == self.id:
            context = params.context
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise SchemaError(f"runbook {self.id}: unknown param(s) {', '.join(unknown)}")
        out: dict[str, Any] = {}
        for name, spec in self.params.items():
            value = spec.check(params.get(name, spec.default))
            if spec.bound is not None:
                spec.bound.check_trust(
                    value, spec.default, self.id, name, context, f"param {name!r}"
                )
            out[name] = value
        return CheckedParams(self.id, out, context or TrustContext())


def _req(data: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise SchemaError(f"{where}: missing field {key!r}")
    value = data[key]
    if isinstance(value, bool) and typ is not bool and not (isinstance(typ, tuple) and bool in typ):
        raise SchemaError(f"{where}: field {key!r} has the wrong type")
    if not isinstance(value, typ):
        raise SchemaError(f"{where}: field {key!r} has the wrong type")
    return value


def _str_list(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = _req(data, key, list, where)
    if not all(isinstance(v, str) and v for v in value):
        raise SchemaError(f"{where}: field {key!r} must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise SchemaError(f"{where}: field {key!r} lists a value twice")
    return tuple(value)


def _citations(values: tuple[str, ...], where: str) -> tuple[str, ...]:
    if not values:
        raise SchemaError(f"{where}: cites no HIPAA control")
    for c in values:
        if not CITATION_RE.match(c):
            raise SchemaError(f"{where}: {c!r} is not a 45 CFR 164 citation")
    return values


def parse_param(name: str, spec: Any, where: str) -> Param:
    """Validate one entry of a manifest's ``[params]`` table."""
    where = f"{where}: param {name!r}"
    if not PARAM_NAME_RE.match(name):
        raise SchemaError(f"{where}: name must be lower_snake_case")
    if not isinstance(spec, Mapping):
        raise SchemaError(f"{where}: must be a table")
    allowed = {"type", "default", "description", "pattern", "min", "max", "bound"}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise SchemaError(f"{where}: unknown field(s) {', '.join(extra)}")
    typ = _req(spec, "type", str, where)
    if typ not in PARAM_TYPES:
        raise SchemaError(f"{where}: type must be one of {PARAM_TYPES}")
    pattern = spec.get("pattern")
    if typ == "str":
        if not isinstance(pattern, str) or not pattern:
            raise SchemaError(f"{where}: str params need a pattern")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SchemaError(f"{where}: bad pattern: {exc}") from None
    elif pattern is not None:
        raise SchemaError(f"{where}: only str params take a pattern")
    lo, hi = spec.get("min"), spec.get("max")
    if (lo is not None or hi is not None) and typ != "int":
        raise SchemaError(f"{where}: only int params take min/max")
    for bound in (lo, hi):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise SchemaError(f"{where}: min/max must be integers")
    bound = parse_bound(spec.get("bound"), typ, where)
    if bound.kind == "range" and (lo is None or hi is None):
        raise SchemaError(f"{where}: a range bound needs min and max")
    param = Param(
        name=name,
        type=typ,
        default=spec.get("default"),
        description=_req(spec, "description", str, where),
        pattern=pattern,
        min=lo,
        max=hi,
        bound=bound,
    )
    param.check(param.default)  # the default itself must be valid
    if bound.trusted and param.default != "":
        raise SchemaError(f"{where}: a trust-redirecting param defaults to '' (not redirected)")
    return param


def parse_check(data: Mapping[str, Any]) -> Check:
    """Validate one ``[[check]]`` entry of checks.toml."""
    cid = _req(data, "id", str, "checks.toml")
    where = f"checks.toml: check {cid!r}"
    if not CHECK_ID_RE.match(cid):
        raise SchemaError(f"{where}: id must be lower_snake_case")
    platforms = _str_list(data, "platforms", where)
    bad = sorted(set(platforms) - set(PLATFORMS))
    if bad:
        raise SchemaError(f"{where}: unknown platform(s) {', '.join(bad)}")
    aliases = _str_list(data, "aliases", where) if "aliases" in data else ()
    for alias in aliases:
        # An alias was once signed into evidence, so it has the evidence's check-id form.
        if not CHECK_ID_RE.match(alias) or alias == cid:
            raise SchemaError(f"{where}: alias {alias!r} is not a former check id")
    fact = data.get("fact")
    if fact is not None and (fact not in FACTS or "nixos" not in platforms):
        raise SchemaError(f"{where}: fact must be one of {FACTS}, on a check the appliance runs")
    return Check(
        id=cid,
        name=_req(data, "name", str, where),
        description=_req(data, "description", str, where),
        platforms=platforms,
        controls=_citations(_str_list(data, "controls", where), where),
        aliases=aliases,
        fact=fact,
    )


_MANIFEST_FIELDS = {
    "id",
    "name",
    "description",
    "platform",
    "category",
    "check",
    "severity",
    "escalation_severity",
    "controls",
    "disruptive",
    "requires_maintenance_window",
    "reboot",
    "phases",
    "default_enabled",
    "params",
    "what_it_changes",
    "observed_keys",
    "refuses",
    "rollback_note",
    "proven",
}


def parse_manifest(data: Mapping[str, Any], directory: Traversable) -> Runbook:
    """Validate a runbook manifest and check that every phase it claims has a script file."""
    where = f"runbook {directory.name}/manifest.toml"
    extra = sorted(set(data) - _MANIFEST_FIELDS)
    if extra:
        raise SchemaError(f"{where}: unknown field(s) {', '.join(extra)}")
    rid = _req(data, "id", str, where)
    if rid != directory.name:
        raise SchemaError(f"{where}: id {rid!r} does not match its directory")
    if not RUNBOOK_ID_RE.match(rid):
        raise SchemaError(f"{where}: id {rid!r} is not a runbook id")
    platform = _req(data, "platform", str, where)
    if platform not in PLATFORMS:
        raise SchemaError(f"{where}: platform must be one of {PLATFORMS}")
    severity = _req(data, "severity", str, where)
    if severity not in SEVERITIES:
        raise SchemaError(f"{where}: severity must be one of {SEVERITIES}")
    escalation = _req(data, "escalation_severity", str, where)
    if escalation not in SEVERITIES:
        raise SchemaError(f"{where}: escalation_severity must be one of {SEVERITIES}")
    phases = _str_list(data, "phases", where)
    if "detect" not in phases:
        raise SchemaError(f"{where}: every runbook needs a detect phase")
    bad = sorted(set(phases) - set(PHASES))
    if bad:
        raise SchemaError(f"{where}: unknown phase(s) {', '.join(bad)}")
    if "remediate" in phases and "verify" not in phases:
        raise SchemaError(f"{where}: a runbook that remediates must verify")
    if "rollback" in phases and "remediate" not in phases:
        raise SchemaError(f"{where}: rollback without remediate")
    flags = {
        k: _req(data, k, bool, where)
        for k in ("disruptive", "requires_maintenance_window", "reboot", "default_enabled")
    }
    if flags["reboot"] and not flags["requires_maintenance_window"]:
        raise SchemaError(f"{where}: a runbook that reboots must require a maintenance window")
    params_raw = data.get("params", {})
    if not isinstance(params_raw, Mapping):
        raise SchemaError(f"{where}: params must be a table")
    params = {n: parse_param(n, s, where) for n, s in params_raw.items()}
    ext = script_ext(platform)
    for phase in phases:
        if not directory.joinpath(f"{phase}.{ext}").is_file():
            raise SchemaError(f"{where}: phase {phase!r} has no {phase}.{ext}")
    observed_keys = _str_list(data, "observed_keys", where)
    if not observed_keys:
        raise SchemaError(f"{where}: observed_keys is empty")
    return Runbook(
        id=rid,
        name=_req(data, "name", str, where),
        description=_req(data, "description", str, where),
        platform=platform,
        category=_req(data, "category", str, where),
        check=_req(data, "check", str, where),
        severity=severity,
        escalation_severity=escalation,
        controls=_citations(_str_list(data, "controls", where), where),
        disruptive=flags["disruptive"],
        requires_maintenance_window=flags["requires_maintenance_window"],
        reboot=flags["reboot"],
        phases=phases,
        default_enabled=flags["default_enabled"],
        params=params,
        what_it_changes=_req(data, "what_it_changes", str, where),
        observed_keys=observed_keys,
        directory=directory,
        refuses=manifest_docs.opt_str(data, "refuses", where),
        rollback_note=manifest_docs.opt_str(data, "rollback_note", where),
        proven=manifest_docs.proven(data, where),
    )
