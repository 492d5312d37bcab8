"""Output/column specs shared by the CLI tables and the console's DataTables.

Why one place: `osiris appliance list` and the console's tables show the same records, and a
column added, renamed or re-formatted in one of them should be a one-line change seen by both.
A :class:`Column` says where its value comes from in an API record (``get``) and how it looks
in a terminal cell; a :class:`ColumnSet` is the ordered columns of one listing.

Two renderings of the same spec:

- the CLI (``emit_table``) wants plain strings: :meth:`ColumnSet.row` gives the raw values
  (``emit_table`` passes each through ``fmt.safe``), :meth:`ColumnSet.headers` the headers;
- the console (a Textual ``DataTable`` / ``widgets.table.KeyedTable``) wants keyed columns and
  Rich ``Text`` cells: :meth:`ColumnSet.keyed` gives ``[(key, header), …]`` and
  :meth:`ColumnSet.cells` one ``Text`` per column (``fmt.cell`` / ``fmt.status_cell``, so remote
  text never carries a control sequence or markup).

A console screen whose table shows fewer columns, or a shorter header, takes
``SET.pick("host", "kind", version="VER")``. No Textual import here (only Rich), like ``fmt``.

Why this file is long: it is a table, one column set per noun, beside the two small classes
that render them; split per noun, the shared header words and formats would drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from rich.text import Text

from .fmt import cell, safe, status_cell

Getter = Callable[[Any], Any]
Styler = Callable[[Any], str]


@dataclass(frozen=True)
class Column:
    """One column: ``key`` (stable DataTable column key), ``header`` (shown), ``get`` (record →
    value), console-only ``style`` (record → Rich style) and ``status`` (render glyph + word via
    ``fmt.status_cell``), and an optional ``width`` hint (a console may cap the column)."""

    key: str
    header: str
    get: Getter
    style: Styler | None = None
    status: bool = False
    width: int | None = None

    def value(self, record: Any) -> Any:
        """The raw value (what the CLI hands to ``emit_table``, which makes it ``safe``)."""
        return self.get(record)

    def text(self, record: Any) -> str:
        """The value as one printable terminal cell (``fmt.safe``)."""
        return safe(self.get(record))

    def cell(self, record: Any) -> Text:
        """The value as a console cell: literal Rich ``Text``, never parsed as markup."""
        v = self.get(record)
        if self.status:
            return status_cell(str(v))
        return cell(v, self.style(record) if self.style else "")


@dataclass(frozen=True)
class ColumnSet:
    """The ordered columns of one listing; iterable, and indexable by column key."""

    name: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, key: str) -> Column:
        for c in self.columns:
            if c.key == key:
                return c
        raise KeyError(f"{self.name} has no column {key!r}")

    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def keyed(self) -> list[tuple[str, str]]:
        """``[(key, header), …]``: what ``KeyedTable(columns)`` takes."""
        return [(c.key, c.header) for c in self.columns]

    def row(self, record: Any) -> list[Any]:
        """Raw values, one per column (the CLI's table row)."""
        return [c.get(record) for c in self.columns]

    def texts(self, record: Any) -> list[str]:
        return [c.text(record) for c in self.columns]

    def cells(self, record: Any) -> list[Text]:
        """One Rich ``Text`` per column (the console's table row)."""
        return [c.cell(record) for c in self.columns]

    def rows(self, records: Iterable[Any]) -> list[list[Any]]:
        return [self.row(r) for r in records]

    def pick(self, *keys: str, **headers: str) -> ColumnSet:
        """These columns in this order (all when none named), headers renamed by key."""
        chosen = [self[k] for k in keys] if keys else list(self.columns)
        out = tuple(replace(c, header=headers[c.key]) if c.key in headers else c for c in chosen)
        unknown = set(headers) - {c.key for c in out}
        if unknown:
            raise KeyError(f"{self.name}: no column(s) {sorted(unknown)} to rename")
        return ColumnSet(self.name, out)

    def plus(self, *extra: Column) -> ColumnSet:
        return ColumnSet(self.name, self.columns + extra)


def cols(name: str, *columns: Column) -> ColumnSet:
    return ColumnSet(name, tuple(columns))


def _or_dash(attr: str) -> Getter:
    return lambda r: getattr(r, attr) or "-"


def _attr(attr: str) -> Getter:
    return lambda r: getattr(r, attr)


def _on_off(enabled: bool) -> str:
    return "● on" if enabled else "○ off"


# ---------------------------------------------------------------- sites, appliances


SITES = cols(
    "sites",
    Column("id", "ID", _attr("id")),
    Column("name", "NAME", _attr("name"), style=lambda s: "bold"),
    Column("partner", "PARTNER", _or_dash("partner_id")),
    Column("interval", "INTERVAL", lambda s: f"{s.checkin_interval_s}s"),
)


def _appliance_status(a: Any) -> str:
    return a.state() + (" ⚠ quarantined" if a.is_quarantined else "")


def _compliant(a: Any) -> str:
    ok, total = a.compliance
    return f"{ok}/{total}" if total else "-"


APPLIANCES = cols(
    "appliances",
    Column("id", "ID", _attr("id")),
    Column("site", "SITE", _attr("site_id")),
    Column("host", "HOSTNAME", _attr("hostname")),
    Column("status", "STATUS", _appliance_status),
    Column("seen", "LAST SEEN", lambda a: a.last_seen_at or "never"),
    Column(
        "drift", "DRIFT", _attr("drift_count"), style=lambda a: "yellow" if a.drift_count else ""
    ),
    # checks that could not run (auth refused, unreachable, timeout): never counted as a pass
    Column("errors", "ERR", _attr("error_count"), style=lambda a: "red" if a.error_count else ""),
    # records.SCORE_RULE: errors and stale results count against
    Column("compliant", "COMPLIANT", _compliant),
)


def _short(value: Any) -> str:
    from .drift import short  # lazily: drift loads the catalogue; most listings need neither

    return short(value)


def _reason(d: Any) -> str:
    from .drift import reason_text

    return reason_text(d.reason)


# A DriftRow (osiris_tui.drift): per host and check, replayed from the evidence chain.
DRIFT = cols(
    "drift",
    Column("host", "HOST", _attr("host_id")),
    Column("check", "CHECK", _attr("check")),
    Column("state", "STATE", _attr("state"), status=True),
    # why an error could not run (drift.REASON_TEXT): "auth refused", "unreachable", "timeout"
    Column("reason", "REASON", lambda d: _reason(d) or "-"),
    Column("since", "SINCE", lambda d: ("" if d.since_exact else "≤") + (d.since or "-")),
    Column("attempts", "ATTEMPTS", _attr("attempts")),
    Column("last", "LAST", lambda d: f"{d.last_tier or '-'} {d.last_outcome or '-'}"),
    Column("observed", "OBSERVED", lambda d: _short(d.observed), width=40),
    Column("expected", "EXPECTED", lambda d: _short(d.expected), width=40),
)


# ---------------------------------------------------------------- credentials, runbooks


CREDENTIALS = cols(
    "credentials",
    Column("id", "ID", _attr("id")),
    Column("host", "HOST", _attr("host_id")),
    Column("kind", "KIND", _attr("kind")),
    Column("address", "ADDRESS", lambda c: f"{c.address}:{c.port}"),
    Column("user", "USER", _attr("username")),
    Column("secret", "SECRET", _attr("secret"), style=lambda c: "dim"),
    Column("version", "VERSION", _attr("version")),
)


def _rb_flags(pair: Any) -> str:
    _state, rb = pair
    flags = []
    if rb is not None and rb.disruptive:
        flags.append("disruptive")
    if rb is not None and rb.requires_maintenance_window:
        flags.append("window")
    return ",".join(flags) or "-"


def _rb_source(pair: Any) -> str:
    s = pair[0]
    return "appliance" if s.appliance is not None else "site" if s.site is not None else "default"


# A pair (RunbookState, catalogue Runbook or None): the state comes from the server, the name
# and flags from the local catalogue (decoration; the server is the truth).
RUNBOOKS = cols(
    "runbooks",
    Column("id", "ID", lambda p: p[0].id),
    Column("state", "STATE", lambda p: _on_off(p[0].enabled)),
    Column(
        "by", "SET BY", _rb_source, style=lambda p: "dim" if _rb_source(p) == "default" else "bold"
    ),
    Column("name", "NAME", lambda p: getattr(p[1], "name", "")),
    Column("flags", "FLAGS", _rb_flags),
)

# A RunbookState alone: the answer to enable/disable/reset.
RUNBOOK_TOGGLES = cols(
    "runbook toggles",
    Column("id", "ID", _attr("id")),
    Column("state", "STATE", lambda s: _on_off(s.enabled)),
)


# A parameter of a runbook at a scope: (name, schema spec, effective value, set by).
RUNBOOK_PARAMS = cols(
    "runbook parameters",
    Column("name", "NAME", lambda p: p[0]),
    Column("type", "TYPE", lambda p: p[1].get("type", "")),
    Column("value", "VALUE", lambda p: json.dumps(p[2])),
    Column("by", "SET BY", lambda p: p[3]),
    Column("default", "DEFAULT", lambda p: json.dumps(p[1].get("default"))),
    Column("description", "DESCRIPTION", lambda p: p[1].get("description", "")),
)


# ---------------------------------------------------------------- orders, incidents, learning


ORDERS = cols(
    "orders",
    Column("id", "ID", _attr("id")),
    Column("kind", "KIND", _attr("kind")),
    Column("runbook", "RUNBOOK", lambda o: (o.params or {}).get("runbook_id", "")),
    Column("host", "HOST", lambda o: (o.params or {}).get("host_id", "")),
    Column("status", "STATUS", _attr("status"), status=True),
    Column("created", "CREATED", _attr("created_at")),
    Column("outcome", "OUTCOME", lambda o: o.result_outcome or ""),
)
# Console only (not in `osiris order list`): the result bundle's hash, abbreviated.
ORDER_BUNDLE = Column("bundle", "EVIDENCE", lambda o: (o.result_bundle_hash or "")[:19], width=19)

INCIDENTS = cols(
    "incidents",
    Column("id", "ID", _attr("id")),
    Column("site", "SITE", _attr("site_id")),
    Column("host", "HOST", _attr("host_id")),
    Column(
        "sev",
        "SEVERITY",
        _attr("severity"),
        style=lambda i: "red" if i.severity == "critical" else "",
    ),
    Column("kind", "KIND", _attr("kind")),
    Column("status", "STATUS", _attr("status"), status=True),
    Column("count", "COUNT", _attr("count")),
    Column("summary", "SUMMARY", _attr("summary")),
)

LEARNING = cols(
    "learning candidates",
    Column("id", "ID", _attr("id")),
    Column("check", "CHECK", _attr("check_id")),
    Column("runbook", "RUNBOOK", _attr("runbook_id")),
    Column("healed", "L2 HEALED", _attr("l2_fraction")),
    Column("sites", "SITES", _attr("sites")),
    Column("after", "AFTER", _attr("after_fraction")),
    Column("status", "STATUS", _attr("status"), status=True),
    Column("updated", "UPDATED", _attr("updated_at")),
)


# ---------------------------------------------------------------- evidence (console)


def _bundle(r: Any) -> Any:
    return (r.get("envelope") or {}).get("bundle") or {}


# A row of GET /evidence: {seq, bundle_hash, envelope: {bundle: …}, …}.
EVIDENCE = cols(
    "evidence",
    Column("seq", "SEQ", lambda r: r.get("seq")),
    Column(
        "outcome",
        "OUTCOME",
        lambda r: str(_bundle(r).get("outcome", r.get("outcome", ""))),
        status=True,
    ),  # fmt: skip
    Column("tier", "TIER", lambda r: _bundle(r).get("tier", "")),
    Column("check", "CHECK", lambda r: _bundle(r).get("check", r.get("check", ""))),
    Column("host", "HOST", lambda r: _bundle(r).get("host_id", r.get("host_id", ""))),
    Column("runbook", "RUNBOOK", lambda r: _bundle(r).get("runbook_id") or "-"),
    Column(
        "controls", "CONTROLS", lambda r: ",".join(_bundle(r).get("controls", []) or []), width=32
    ),  # fmt: skip
)


# ---------------------------------------------------------------- provisioning


PROVISIONS = cols(
    "provisions",
    Column("id", "ID", _attr("id")),
    Column("site", "SITE", _attr("site_id")),
    Column("state", "STATE", _attr("state"), status=True),
    Column("expires", "EXPIRES", _attr("expires_at")),
    Column("appliance", "APPLIANCE", _or_dash("appliance_id")),
)
# Console only (not in `osiris provision list`).
PROVISION_CREATED = Column("created", "CREATED", _attr("created_at"))

# A MAC enrollment request: a plain dict from GET /provisions.
MAC_REQUESTS = cols(
    "mac requests",
    Column("mac", "MAC", lambda r: r["mac"]),
    Column("status", "STATUS", lambda r: r["status"], status=True),
    Column("fingerprint", "FINGERPRINT", lambda r: r.get("requester_fingerprint") or "-"),
    Column("source", "FROM", lambda r: r.get("source") or "-"),
    Column("site", "SITE", lambda r: r.get("site_id") or "-"),
    Column("requested", "REQUESTED", lambda r: r.get("requested_at") or "-"),
)


# ---------------------------------------------------------------- partners, tokens, audit


PARTNERS = cols(
    "partners",
    Column("id", "ID", _attr("id")),
    Column("name", "NAME", _attr("name")),
    Column("contact", "CONTACT", _or_dash("contact_email")),
)

TOKENS = cols(
    "tokens",
    Column("id", "ID", _attr("id")),
    Column("kind", "KIND", _attr("kind")),
    Column("role", "ROLE", _attr("role")),
    Column("name", "NAME", _attr("name")),
    Column("site", "SITE", _or_dash("site_id")),
    Column("created", "CREATED", _attr("created_at")),
    Column("revoked", "REVOKED", _or_dash("revoked_at")),
)

AUDIT = cols(
    "audit",
    Column("id", "ID", _attr("id")),
    Column("at", "AT", _attr("at")),
    Column("actor", "ACTOR", _attr("actor")),
    Column("action", "ACTION", _attr("action"), style=lambda a: "bold"),
    Column("target", "TARGET", _attr("target")),
    Column("site", "SITE", _or_dash("site_id")),
)


def _audit_detail(a: Any) -> str:
    return json.dumps(a.detail, sort_keys=True) if a.detail else ""


# Console only (not in `osiris audit list`; `--json` carries it).
AUDIT_DETAIL = Column("detail", "DETAIL", _audit_detail)


# ---------------------------------------------------------------- the lab demo


# A lab host of the running demo: a dict from osiris_lab.demo.farm_hosts.
DEMO_HOSTS = cols(
    "demo hosts",
    Column("host", "HOST", lambda h: f"{h['site']}/{h['host']}"),
    Column("kind", "KIND", lambda h: h["kind"]),
    Column("injected", "INJECTED", lambda h: ", ".join(h["injected"]) or "-"),
    Column("drifting", "DRIFTING", lambda h: ", ".join(h["drifting"]) or "compliant"),
    Column("phases", "PHASES RUN", lambda h: sum(h["phases_run"].values())),
)
