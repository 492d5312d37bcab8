"""Semantic bounds of runbook parameters: the one validator that keeps a value from weakening.

Why: a regex says what a value looks like, not what it does. ``target_mode = "0666"`` matches
``^[0-7]{3,4}$`` and makes LIN-PERM-001 ``chmod 0666 /etc/shadow``; ``service =
"debug-shell.service"`` matches a unit-name regex and makes LIN-SVC-002 start a password-less root
shell. So every manifest parameter also declares a ``bound`` — what the value *means* — and a
value is accepted only if, under that meaning, the runbook still leaves the host at least as
protected as its baseline (DESIGN §6 "Nothing weakens a clinic"). The catalogue refuses to load a
parameter without a bound, and this module is the only place that judges values: the server
(``PUT …/params``, building the policy), the agent (accepting a signed policy, and again for every
script it renders) and the docs all call it.

Kinds (``bound = { kind = "…", … }`` in a manifest):

``range``     int in ``[min, max]``; ``tighter`` = ``lower``/``higher``/``neither`` says which way
              is stricter; the loose end of the range is the baseline the control guarantees.
``flag``      bool; ``tighter`` = ``true``/``false``/``neither``; both values keep the baseline.
``choice``    str, one of ``values`` (each one a setting that meets the control).
``mode``      octal file mode whose permission bits are a subset of ``baseline`` (no bit the
              baseline lacks: no group-write, no other-bits, no setuid/setgid/sticky beyond it).
``modes``     space-separated list of such modes.
``unit``      a systemd unit from the runbook's ``allow`` list (``.service`` implied).
``units``     space-separated units from ``allow`` that must include every ``require`` unit, so
              a list can only grow (a stop-list stops more, a keep-running list keeps more).
``names``     space-separated names (``pattern`` per item) that must include every ``require``.
``path``      a normalised absolute path strictly inside ``dir``.
``digest``    empty or a lowercase hex SHA-256 pin (a wrong pin only ever reports drift).
``ipv4``      empty or an IPv4 address; ``scope = "private"``: RFC 1918 only.
``ports``     empty (the runbook finds the ports itself) or space-separated ``PORT[/tcp|/udp]``,
              each 1..65535, none twice. The runbook must keep its own path whatever the list
              says (LIN-FW-001 always allows the agent's SSH session first).
``trusted``   trust-redirecting (update server, DNS servers, NTP sources, a pinned baseline):
              set by an admin only, and the value (or, with ``split``, every item of it) must be on
              the site's allow-list, which only an admin edits. Default ``""``: not redirected.
``release``   the desired NixOS system: a ``/nix/store`` path on the site's allow-list *and*
              named by a signed ``osiris.release/1`` document (``osiris_core.release``).

Every unit check also refuses, whatever a manifest says, the units that are a root shell or a
system state (``debug-shell``, ``emergency``, ``rescue``, any ``*.target``), and a list of units a
runbook *stops* may never name a unit that protects the host (sshd, auditd, journald, …).

Why this file is long: ``Bound`` is the one validator described above and each kind is a branch of
it; keeping every kind in one class keeps the promise "this module is the only place that judges
values" checkable by reading one file.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from osiris_core import ids
from osiris_core.errors import SchemaError

KINDS = (
    "range", "flag", "choice", "mode", "modes", "unit", "units", "names", "path", "digest",
    "ipv4", "trusted", "release", "ports",
)  # fmt: skip
TRUST_KINDS = frozenset({"trusted", "release"})
SETTERS = ("operator", "admin")

# Never acceptable as a unit a runbook starts, keeps running or stops: a root shell on a console
# (debug-shell), single-user states (emergency, rescue), and any target (a system state switch).
FORBIDDEN_UNIT_STEMS = frozenset({"debug-shell", "emergency", "rescue"})
# Never in a list of units a runbook stops or disables: each keeps the host protected or reachable.
PROTECTED_UNIT_STEMS = frozenset(
    {
        "ssh", "sshd", "auditd", "systemd-journald", "rsyslog", "syslog-ng", "nftables", "ufw",
        "firewalld", "apparmor", "osiris-agent", "dbus", "systemd-logind", "chronyd", "chrony",
        "systemd-timesyncd", "clamav-daemon",
    }
)  # fmt: skip
# A path bound may not be one of these directories itself (the agent's keys live there).
SENSITIVE_DIRS = frozenset({"/var/lib/osiris", "/etc", "/var", "/var/lib", "/", "/nix/store"})

_UNIT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._-]{0,63}")
_MODE_RE = re.compile(r"[0-7]{1,4}")
_HEX64 = ids.HEX64.regex  # the one grammar (osiris_core.ids)
_STORE_PATH = ids.STORE_PATH.regex
_PRIVATE = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
_TIGHTER = {"range": ("lower", "higher", "neither"), "flag": ("true", "false", "neither")}

# field -> the kinds that take it (and must, for the ones listed in _REQUIRED)
_FIELDS: dict[str, frozenset[str]] = {
    "tighter": frozenset({"range", "flag"}),
    "values": frozenset({"choice"}),
    "baseline": frozenset({"mode", "modes"}),
    "allow": frozenset({"unit", "units"}),
    "require": frozenset({"units", "names"}),
    "action": frozenset({"unit", "units"}),
    "dir": frozenset({"path"}),
    "scope": frozenset({"ipv4"}),
    "split": frozenset({"trusted"}),
    "why": frozenset(KINDS),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "range": ("tighter",),
    "flag": ("tighter",),
    "choice": ("values",),
    "mode": ("baseline",),
    "modes": ("baseline",),
    "unit": ("allow", "action"),
    "units": ("allow", "action"),
    "names": ("require",),
    "path": ("dir",),
}
_TYPE_OF = {"range": "int", "flag": "bool"}  # every other kind is a str


def unit_stem(name: str) -> str:
    """``sshd.service`` → ``sshd``; other suffixes (``.socket``) are kept."""
    return name[: -len(".service")] if name.endswith(".service") else name


def forbidden_unit(name: str) -> str | None:
    """Why ``name`` may never be a runbook's unit, or ``None``."""
    stem = unit_stem(name)
    if name.endswith(".target") or stem.endswith(".target"):
        return f"{name!r} is a target (a system state), never a runbook's unit"
    base = stem.split("@", 1)[0].split(".", 1)[0]
    if base in FORBIDDEN_UNIT_STEMS:
        return f"{name!r} is a root shell or single-user state, never a runbook's unit"
    return None


def parse_mode(text: str) -> int:
    if not isinstance(text, str) or _MODE_RE.fullmatch(text) is None:
        raise SchemaError(f"{text!r} is not an octal mode")
    return int(text, 8)


def _words(value: str) -> list[str]:
    return value.split(" ") if value else []


@dataclass(frozen=True)
class TrustContext:
    """What the trust kinds are judged against: the site's allow-lists and the verified
    release documents (both from the signed policy on the agent, from the database on the
    server). ``pinned``, when set, fixes every trust-redirecting value to exactly the policy's
    (``{runbook_id: {name: value}}``): an L1 rule, an L2 plan or an order may then not name any
    other value, not even another allow-listed one."""

    allowlists: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    releases: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pinned: Mapping[str, Mapping[str, Any]] | None = None

    def allowed(self, runbook_id: str, name: str) -> tuple[str, ...]:
        return tuple(self.allowlists.get(runbook_id, {}).get(name, ()))

    def pin(self, pinned: Mapping[str, Mapping[str, Any]]) -> TrustContext:
        frozen = MappingProxyType({rb: MappingProxyType(dict(v)) for rb, v in pinned.items()})
        return TrustContext(self.allowlists, self.releases, frozen)


EMPTY_CONTEXT = TrustContext()


class CheckedParams(dict[str, Any]):
    """Parameter values for one runbook together with the trust context they were judged in.

    ``Runbook.validate_params`` re-judges them (it never trusts a stamp), using ``context`` for
    the trust-redirecting ones; ``render`` takes the release document of a ``release`` value
    from it. A plain dict carries no context: a trust-redirecting value in it must be the
    catalogue default."""

    __slots__ = ("runbook_id", "context")

    def __init__(self, runbook_id: str, values: Mapping[str, Any], context: TrustContext) -> None:
        super().__init__(values)
        self.runbook_id = runbook_id
        self.context = context


@dataclass(frozen=True, slots=True)
class Bound:
    """A parameter's semantic bound; see the module docstring for the kinds."""

    kind: str
    why: str = ""
    tighter: str | None = None
    values: tuple[str, ...] = ()
    baseline: int | None = None
    allow: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    action: str | None = None
    dir: str | None = None
    scope: str | None = None
    split: str | None = None

    @property
    def trusted(self) -> bool:
        """Trust-redirecting: admin-only and allow-listed per site."""
        return self.kind in TRUST_KINDS

    @property
    def set_by(self) -> str:
        """Who may set it: ``admin`` (trust-redirecting) or ``operator`` (any writer)."""
        return "admin" if self.trusted else "operator"

    # -- checking -----------------------------------------------------------------------------

    def check(self, value: Any, where: str, lo: int | None = None, hi: int | None = None) -> None:
        """Context-free: ``SchemaError`` unless ``value`` keeps the baseline (trust kinds: only
        the form is checked here; :meth:`check_trust` judges the allow-list)."""
        k = self.kind
        if k == "range":
            if lo is None or hi is None or not lo <= value <= hi:  # Param.check said so first
                raise SchemaError(f"{where}: {value} is outside {lo}..{hi}")
        elif k == "flag" or k == "digest":
            if k == "digest" and value and _HEX64.fullmatch(value) is None:
                raise SchemaError(f"{where}: not a lowercase hex SHA-256")
        elif k == "choice":
            if value not in self.values:
                raise SchemaError(f"{where}: {value!r} is not one of {', '.join(self.values)}")
        elif k == "mode":
            self._mode(value, where)
        elif k == "modes":
            items = _words(value)
            if not items:
                raise SchemaError(f"{where}: names no mode")
            for m in items:
                self._mode(m, where)
        elif k == "unit":
            self._unit(value, where)
        elif k == "units":
            items = _words(value)
            if len(set(items)) != len(items):
                raise SchemaError(f"{where}: lists a unit twice")
            for u in items:
                self._unit(u, where)
            self._superset(items, where)
        elif k == "names":
            items = _words(value)
            if len(set(items)) != len(items):
                raise SchemaError(f"{where}: lists a name twice")
            self._superset(items, where)
        elif k == "path":
            self._path(value, where)
        elif k == "ipv4":
            self._ipv4(value, where)
        elif k == "ports":
            self._ports(value, where)
        elif k == "release":
            if value and _STORE_PATH.fullmatch(value) is None:
                raise SchemaError(f"{where}: not a /nix/store path")
        # "trusted": the pattern already fixed the form; check_trust does the rest

    def _mode(self, text: str, where: str) -> None:
        assert self.baseline is not None
        try:
            m = parse_mode(text)
        except SchemaError as exc:
            raise SchemaError(f"{where}: {exc}") from None
        extra = m & ~self.baseline
        if extra:
            raise SchemaError(
                f"{where}: mode {text} adds permission bits {extra:04o} beyond the baseline "
                f"{self.baseline:04o} (it would weaken the control)"
            )

    def _unit(self, name: str, where: str) -> None:
        why = forbidden_unit(name)
        if why:
            raise SchemaError(f"{where}: {why}")
        if unit_stem(name) not in {unit_stem(a) for a in self.allow}:
            raise SchemaError(
                f"{where}: unit {name!r} is not on this runbook's allow-list "
                f"({', '.join(self.allow)})"
            )

    def _superset(self, items: list[str], where: str) -> None:
        norm = {unit_stem(i) for i in items}
        missing = [r for r in self.require if unit_stem(r) not in norm]
        if missing:
            raise SchemaError(
                f"{where}: must keep {', '.join(missing)} (the baseline list can only grow)"
            )

    def _path(self, value: str, where: str) -> None:
        assert self.dir is not None
        if (
            not value.startswith("/")
            or posixpath.normpath(value) != value
            or value.startswith("//")
            or not value.startswith(self.dir + "/")
        ):
            raise SchemaError(f"{where}: {value!r} is not a normalised path inside {self.dir}/")

    def _ports(self, value: str, where: str) -> None:
        items = _words(value)
        if len(set(items)) != len(items):
            raise SchemaError(f"{where}: lists a port twice")
        for item in items:
            num, _, proto = item.partition("/")
            if not num.isdigit() or not 1 <= int(num) <= 65535 or proto not in ("", "tcp", "udp"):
                raise SchemaError(f"{where}: {item!r} is not PORT, PORT/tcp or PORT/udp (1..65535)")

    def _ipv4(self, value: str, where: str) -> None:
        if not value:
            return
        try:
            addr = ipaddress.IPv4Address(value)
        except ValueError:
            raise SchemaError(f"{where}: {value!r} is not an IPv4 address") from None
        if self.scope == "private" and not any(addr in net for net in _PRIVATE):
            raise SchemaError(f"{where}: {value} is not a private (RFC 1918) address")

    def check_trust(
        self,
        value: Any,
        default: Any,
        runbook_id: str,
        name: str,
        context: TrustContext | None,
        where: str,
    ) -> None:
        """The trust kinds against the site's allow-list (and release documents)."""
        if not self.trusted:
            return
        if context is not None and context.pinned is not None:
            want = context.pinned.get(runbook_id, {}).get(name, default)
            if value != want:
                raise SchemaError(
                    f"{where}: is trust-redirecting; only the signed policy sets it "
                    f"(in force: {want!r})"
                )
            return
        if value == default:
            return  # the baseline: not redirected anywhere
        if context is None:
            raise SchemaError(
                f"{where}: is trust-redirecting; {value!r} needs the site's allow-list"
            )
        allowed = set(context.allowed(runbook_id, name))
        items = value.split(self.split) if self.split else [value]
        off = [i for i in items if i not in allowed]
        if off:
            raise SchemaError(
                f"{where}: {', '.join(repr(o) for o in off)} is not on the site's allow-list "
                "(only an admin adds to it)"
            )
        if self.kind == "release" and value not in context.releases:
            raise SchemaError(f"{where}: {value} is named by no signed release document")

    # -- describing ---------------------------------------------------------------------------

    def describe(self, lo: int | None = None, hi: int | None = None) -> str:
        """One line for docs/runbooks.md and the API's schema view."""
        k = self.kind
        if k == "range":
            loose = {"lower": f"at most {hi}", "higher": f"at least {lo}"}.get(self.tighter or "")
            text = f"{lo}..{hi}"
            if loose:
                text += f"; lower is stricter, baseline {loose}" if self.tighter == "lower" else (
                    f"; higher is stricter, baseline {loose}")  # fmt: skip
            else:
                text += "; neither way weakens the control"
        elif k == "flag":
            text = (
                "either value keeps the baseline"
                if self.tighter == "neither"
                else f"either value keeps the baseline; {self.tighter} is stricter"
            )
        elif k == "choice":
            text = "one of " + ", ".join(f"`{v}`" for v in self.values)
        elif k in ("mode", "modes"):
            assert self.baseline is not None
            what = "a mode" if k == "mode" else "modes"
            text = f"{what} whose permission bits are a subset of {self.baseline:04o}"
        elif k in ("unit", "units"):
            verb = "stopped" if self.action == "stop" else "kept running"
            text = (
                ("a unit" if k == "unit" else "units")
                + " from "
                + ", ".join(f"`{a}`" for a in self.allow)
                + f" ({verb})"
            )
            if self.require:
                text += "; must keep " + ", ".join(f"`{r}`" for r in self.require)
        elif k == "names":
            text = "must keep " + ", ".join(f"`{r}`" for r in self.require) + "; may add more"
        elif k == "path":
            text = f"a normalised path inside `{self.dir}/`"
        elif k == "digest":
            text = "empty or a hex SHA-256 pin (a wrong pin reports drift, never a pass)"
        elif k == "ipv4":
            text = "empty or an IPv4 address" + (
                " in a private (RFC 1918) range" if self.scope == "private" else ""
            )
        elif k == "ports":
            text = (
                "empty (the ports the host listens on) or PORT[/tcp|/udp] items, 1..65535; "
                "the agent's own path is kept whatever the list says"
            )
        elif k == "trusted":
            each = " (each item)" if self.split else ""
            text = f"trust-redirecting: empty, or{each} on the site's admin-edited allow-list"
        else:  # release
            text = (
                "trust-redirecting: empty, or a /nix/store path on the site's allow-list and "
                "named by a signed osiris.release/1 document"
            )
        return text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "set_by": self.set_by}
        for name in ("tighter", "action", "dir", "scope", "split"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        if self.values:
            out["values"] = list(self.values)
        if self.baseline is not None:
            out["baseline"] = f"{self.baseline:04o}"
        if self.allow:
            out["allow"] = list(self.allow)
        if self.require:
            out["require"] = list(self.require)
        return out


def _str_tuple(spec: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = spec.get(key)
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise SchemaError(f"{where}: bound.{key} must be a non-empty list of strings")
    if len(set(v)) != len(v):
        raise SchemaError(f"{where}: bound.{key} lists a value twice")
    return tuple(v)


def parse_bound(spec: Any, typ: str, where: str) -> Bound:
    """Validate a manifest's ``bound`` table for a parameter of type ``typ``."""
    if not isinstance(spec, Mapping):
        raise SchemaError(f"{where}: needs a bound table (what the value may mean)")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise SchemaError(f"{where}: bound.kind must be one of {', '.join(KINDS)}")
    want_type = _TYPE_OF.get(kind, "str")
    if typ != want_type:
        raise SchemaError(f"{where}: a {kind} bound needs a {want_type} param, not {typ}")
    extra = sorted(k for k in spec if k != "kind" and kind not in _FIELDS.get(k, frozenset()))
    if extra:
        raise SchemaError(f"{where}: bound field(s) {', '.join(extra)} do not apply to {kind}")
    missing = [k for k in _REQUIRED.get(kind, ()) if k not in spec]
    if missing:
        raise SchemaError(f"{where}: a {kind} bound needs {', '.join(missing)}")
    why = spec.get("why", "")
    if not isinstance(why, str):
        raise SchemaError(f"{where}: bound.why must be a string")
    kw: dict[str, Any] = {"kind": kind, "why": why}
    if "tighter" in spec:
        if spec["tighter"] not in _TIGHTER[kind]:
            raise SchemaError(f"{where}: bound.tighter must be one of {_TIGHTER[kind]}")
        kw["tighter"] = spec["tighter"]
    if "values" in spec:
        kw["values"] = _str_tuple(spec, "values", where)
    if "baseline" in spec:
        try:
            kw["baseline"] = parse_mode(spec["baseline"]) & 0o7777
        except SchemaError:
            raise SchemaError(f"{where}: bound.baseline must be an octal mode string") from None
    if "allow" in spec:
        kw["allow"] = _str_tuple(spec, "allow", where)
        for u in kw["allow"]:
            if _UNIT_RE.fullmatch(u) is None:
                raise SchemaError(f"{where}: bound.allow: {u!r} is not a unit name")
            why_not = forbidden_unit(u)
            if why_not:
                raise SchemaError(f"{where}: bound.allow: {why_not}")
    if "action" in spec:
        if spec["action"] not in ("run", "stop"):
            raise SchemaError(f"{where}: bound.action must be run or stop")
        kw["action"] = spec["action"]
        if spec["action"] == "stop":
            bad = [u for u in kw["allow"] if unit_stem(u).split("@")[0] in PROTECTED_UNIT_STEMS]
            if bad:
                raise SchemaError(
                    f"{where}: a runbook that stops units may never stop {', '.join(bad)}"
                )
    if "require" in spec:
        kw["require"] = _str_tuple(spec, "require", where)
        if "allow" in kw:
            stray = [r for r in kw["require"] if unit_stem(r) not in map(unit_stem, kw["allow"])]
            if stray:
                raise SchemaError(f"{where}: bound.require {stray} is not allowed by bound.allow")
    if "dir" in spec:
        d = spec["dir"]
        if (
            not isinstance(d, str)
            or not d.startswith("/")
            or posixpath.normpath(d) != d
            or d in SENSITIVE_DIRS
            or d.count("/") < 2
        ):
            raise SchemaError(f"{where}: bound.dir must be a specific normalised directory")
        kw["dir"] = d
    if "scope" in spec:
        if spec["scope"] != "private":
            raise SchemaError(f"{where}: bound.scope must be private")
        kw["scope"] = "private"
    if "split" in spec:
        if spec["split"] not in (",", " "):
            raise SchemaError(f"{where}: bound.split must be ',' or ' '")
        kw["split"] = spec["split"]
    return Bound(**kw)
