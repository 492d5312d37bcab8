"""The one id grammar (``osiris_core.ids``): each kind accepts and refuses what docs/api.md says,
including the deliberate ``/`` decision, and no production module spells an id regex of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from osiris_core import ids
from osiris_core.errors import SchemaError

GOOD: dict[ids.IdKind, list[str]] = {
    ids.HOST_ID: [
        "dc01",
        "h1",
        "ws01.clinic.local",
        "10.0.0.5",
        "fe80::1",
        "admin@h",
        "CLINIC/dc01",
    ],
    ids.APPLIANCE_ID: ["app_3f9c2e17a0b4d5e6f7a8", "indep-1", "app-1", "a", "box:1@lab"],
    ids.SITE_ID: ["site-00", "s1", "a", "clinic.north_2", "x" * 63],
    ids.PARTNER_ID: ["acme-it", "p1"],
    ids.BUNDLE_ID: ["5f0c9d2e-8b1a-4c3d-9e7f-0a1b2c3d4e5f"],
    ids.ORDER_REF: ["ord-1", "o", "0b6f2c1e-6a0d-4e8e-9f5c-2d8a1b7c3e40"],
    ids.RESELLER_ID: ["acme-it", "r_1", "acme-1"],
    ids.ORDER_ID: ["0b6f2c1e-6a0d-4e8e-9f5c-2d8a1b7c3e40"],
    ids.CHECK_ID: ["linux_ssh", "timesync", "a" * 64],
    ids.RUNBOOK_ID: ["RB-WIN-FIREWALL-001", "LIN-SSH-001", "RB-1", "A", "rb.x_1"],
    ids.CATALOG_RUNBOOK_ID: ["RB-WIN-FIREWALL-001", "RB-NIX-TIME-001", "LIN-SSH-001"],
    ids.RULE_ID: ["L1-WIN-FIREWALL-001", "L1-X"],
    ids.PARAM_NAME: ["port", "critical_overdue_days", "a" * 40],
    ids.ORDER_PARAM_NAME: ["profile", "Profile", "port_2"],
    ids.KEY_ID: ["0a1b2c3d"],
    ids.HASH: ["sha256:" + "ab" * 32],
    ids.HEX64: ["ab" * 32],
    ids.TIME: ["2026-01-01T00:00:00.000Z"],
    ids.HHMM: ["00:00", "23:59"],
    ids.MAC: ["52:54:00:12:34:56"],
    ids.TRUST_NAME: ["riverside-appliance", "A.b_c-1"],
    ids.STORE_PATH: ["/nix/store/" + "a" * 32 + "-osiris-system"],
    ids.RELEASE_NAME: ["2026.12.1", "v1+lab"],
    ids.AGENT_VERSION: ["0.9.1", "1.0.0-rc1"],
    ids.RELEASE_VERSION: ["0.2.0", "1.2.3.4", "1.2.3-rc.1", "1.2+build"],
    ids.HOSTNAME: ["osiris", "box-1.clinic.local"],
    ids.CITATION: ["164.312(b)", "164.308(a)(1)(ii)(D)", "164.999"],
    ids.CATALOG_CITATION: ["164.312(b)", "164.308(a)(1)(ii)(D)"],
}
BAD: dict[ids.IdKind, list[object]] = {
    ids.HOST_ID: ["", "-dc01", "/dc01", "dc 01", "x" * 129, None, 5],
    # The "/" decision: appliance, bundle, order and site ids refuse it; host ids allow it.
    ids.APPLIANCE_ID: ["a/b", "", "-a", "x" * 129, "a b"],
    ids.SITE_ID: ["a/b", "a:b", "a@b", "", "-a", "x" * 64],
    ids.PARTNER_ID: ["a/b", "a:b"],
    ids.BUNDLE_ID: ["a/b", ""],
    ids.ORDER_REF: ["a/b", ""],
    ids.RESELLER_ID: ["a b", "a/b", "a:b", "a@b", "x" * 65],
    ids.ORDER_ID: [
        "ord-1",
        "0B6F2C1E-6A0D-4E8E-9F5C-2D8A1B7C3E40",
        "0b6f2c1e-6a0d-1e8e-9f5c-2d8a1b7c3e40",
    ],
    ids.CHECK_ID: ["Linux", "1x", "a-b", "a" * 65],
    ids.RUNBOOK_ID: ["", "-RB", "RB/1", "R" * 65],
    ids.CATALOG_RUNBOOK_ID: ["RB-1", "RB-WIN-FW-01", "rb-win-fw-001"],
    ids.RULE_ID: ["L2-X", "L1-", "l1-x"],
    ids.PARAM_NAME: ["Bad-Name", "Port", "1x", "a" * 41],
    ids.ORDER_PARAM_NAME: ["1x", "a-b", "a" * 65],
    ids.KEY_ID: ["0A1B2C3D", "0a1b2c3", "0a1b2c3d0"],
    ids.HASH: ["sha256:" + "AB" * 32, "ab" * 32],
    ids.HEX64: ["ab" * 31],
    ids.TIME: ["2026-01-01T00:00:00Z", "2026-01-01 00:00:00.000Z"],
    ids.HHMM: ["24:00", "2:00"],
    ids.MAC: ["52-54-00-12-34-56", "52:54:00:12:34:5G"],
    ids.TRUST_NAME: ["-lead", "has space", "a/b", "x" * 65],
    ids.STORE_PATH: ["/nix/store/short-x", "/tmp/x"],
    ids.RELEASE_NAME: ["-x", "a b"],
    ids.AGENT_VERSION: [".1", "1 0"],
    ids.RELEASE_VERSION: ["latest", "1", "0.2.0; reboot", "v1.2"],
    ids.HOSTNAME: ["-box", "box_1", "a" * 254],
    ids.CITATION: ["164.31(b)", "HIPAA 164.312(b)", "164.312b"],
    ids.CATALOG_CITATION: ["164.999(a)", "164.312"],
}


def test_every_kind_has_examples_and_its_own_example_matches() -> None:
    assert set(GOOD) == set(BAD) == set(ids.ALL), "every kind is tested both ways"
    for kind in ids.ALL:
        assert kind.match(kind.example), kind.name
        assert len(kind.example) <= kind.max_len
    assert len({k.name for k in ids.ALL}) == len(ids.ALL), "two kinds share a name"


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, vs in GOOD.items() for v in vs])
def test_accepts(kind: ids.IdKind, value: str) -> None:
    assert kind.match(value)
    assert kind.check(value, "x.y") == value


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, vs in BAD.items() for v in vs])
def test_refuses_with_the_callers_dotted_path(kind: ids.IdKind, value: object) -> None:
    assert not kind.match(value)
    with pytest.raises(SchemaError, match=r"^status\.checks\[0\]\.host_id has an invalid format$"):
        kind.check(value, "status.checks[0].host_id")


def test_catalogue_ids_are_wire_ids() -> None:
    """Every id the catalogue may define is one a signed document may carry."""
    for v in GOOD[ids.CATALOG_RUNBOOK_ID]:
        assert ids.RUNBOOK_ID.match(v)


# ---------------------------------------------------------------- no second spelling of an id

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("osiris_core", "osiris_agent", "osiris_server", "osiris_tui")
# Fragments of the id regexes that used to be copied around; a regex literal holding one outside
# osiris_core/ids.py is a second spelling of an id kind.
ID_FRAGMENTS = (
    "[A-Za-z0-9][A-Za-z0-9._",  # opaque, host, site, release-name ids
    "[A-Za-z0-9][A-Za-z0-9_.",  # runbook ids
    "[A-Za-z0-9][A-Za-z0-9.-]",  # hostnames
    "[a-z][a-z0-9_]",  # check ids, parameter names
    "[A-Z][A-Z0-9-]{2,63}",  # the old evidence runbook id
    "(RB-(WIN|NIX)|LIN)",  # catalogue runbook ids
    "L1-[A-Z0-9]",  # rule ids
    "[0-9a-f]{64}",  # digests and sha256: hashes
    "[0-9a-f]{8}-[0-9a-f]{4}-4",  # uuid4 order ids
    '"[0-9a-f]{8}"',  # key ids
    "[0-9a-f]{8}$",  # key ids, anchored
    "/nix/store/[0-9a-z]{32}",  # store paths
    "2[0-3]):[0-5]",  # HH:MM
    "([0-9a-f]{2}:){5}",  # MAC addresses
    r"164\.",  # HIPAA citations
)
REGEX_USE = re.compile(r"re\.(compile|fullmatch|match|search)\(|pattern=")
# Modules another change owns and that still spell an id of their own; each line says which kind
# it should read from osiris_core.ids. The list may only shrink (test_the_pending_list_is_real).
PENDING: dict[str, str] = {}


def id_regex_lines(path: Path) -> list[str]:
    """``<line>: <text>`` of each line of ``path`` that builds a regex holding an id fragment."""
    hits = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if REGEX_USE.search(line) and any(f in line for f in ID_FRAGMENTS):
            hits.append(f"{i}: {line.strip()}")
    return hits


def production_files() -> list[Path]:
    files = [f for layer in PRODUCTION for f in sorted((ROOT / layer).rglob("*.py"))]
    return [f for f in files if f != ROOT / "osiris_core" / "ids.py"]


def test_no_production_module_spells_an_id_regex_of_its_own() -> None:
    files = production_files()
    assert len(files) > 100, "the scan found too few files to mean anything"
    bad = [
        f"{f.relative_to(ROOT)}:{hit}"
        for f in files
        if str(f.relative_to(ROOT)) not in PENDING
        for hit in id_regex_lines(f)
    ]
    assert bad == [], "import the kind from osiris_core.ids instead"


def test_the_scan_sees_a_copied_id_regex(tmp_path: Path) -> None:
    f = tmp_path / "copy.py"
    f.write_text('import re\n_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")\n')
    assert id_regex_lines(f) == ['2: _ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")']
    g = tmp_path / "spec.py"
    g.write_text('X = F("string", pattern=r"sha256:[0-9a-f]{64}")\n')
    assert len(id_regex_lines(g)) == 1
    # ids.py itself holds every fragment it guards against
    source = (ROOT / "osiris_core" / "ids.py").read_text(encoding="utf-8")
    assert sum(f in source for f in ID_FRAGMENTS) >= len(ID_FRAGMENTS) - 2


def test_the_pending_list_is_real() -> None:
    """Each pending module still has a copy (else its line must go)."""
    for rel in PENDING:
        assert id_regex_lines(ROOT / rel), f"{rel} no longer spells an id: drop it from PENDING"


def test_docs_api_id_grammar_table_is_this_table() -> None:
    """docs/api.md ("Id grammar") shows every kind with its pattern and length limit."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("## Id grammar", 1)[1].split("\n## ", 1)[0]
    rows = {
        cells[0].strip("`"): cells
        for line in section.splitlines()
        if line.startswith("| `")
        for cells in [[c.strip() for c in line.strip("|").split(" | ")]]
    }
    assert set(rows) == {k.name for k in ids.ALL}
    for k in ids.ALL:
        assert rows[k.name][1] == "`" + k.pattern.replace("|", "\\|") + "`", k.name
        assert rows[k.name][2] == str(k.max_len), k.name
