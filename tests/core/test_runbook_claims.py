"""docs/runbooks.md says per runbook where it was proven; those claims must name real tests.

A manifest's ``[proven]`` value starts with the test file that proves it. The file must exist and
name the runbook (its id literally, or a ``# proves-every: <platform>`` line when it parametrizes
over the catalogue), so the generated docs cannot claim a proof that nobody runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from osiris_core.catalog import load_catalog
from osiris_core.catalog.model import parse_manifest
from osiris_core.errors import SchemaError

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog()
EVERY_RE = re.compile(r"^# proves-every: (?P<platform>[a-z]+)$", re.M)


def _claims() -> list[tuple[str, str, str]]:
    return [
        (rb.id, kind, claim)
        for rb in CATALOG.runbooks.values()
        for kind, claim in sorted(rb.proven.items())
    ]


@pytest.mark.parametrize(("rid", "kind", "claim"), _claims())
def test_claim_names_an_existing_test_that_names_the_runbook(rid: str, kind: str, claim: str):
    path = ROOT / claim.split()[0]
    assert path.is_file(), f"{rid} proven.{kind}: {path} does not exist"
    text = path.read_text(encoding="utf-8")
    platform = CATALOG.runbooks[rid].platform
    every = {m["platform"] for m in EVERY_RE.finditer(text)}
    assert rid in text or platform in every, f"{rid} proven.{kind}: {path.name} never names it"


def test_a_claim_without_a_test_path_is_refused_at_load(tmp_path: Path):
    src = CATALOG.runbooks["LIN-PERM-001"].directory
    rb_dir = tmp_path / "LIN-PERM-001"
    rb_dir.mkdir()
    for f in src.iterdir():
        (rb_dir / f.name).write_bytes(f.read_bytes())
    import tomllib

    data = tomllib.loads((rb_dir / "manifest.toml").read_text())
    data["proven"] = {"realhost": "it works, trust me"}
    with pytest.raises(SchemaError, match="must start with the test file"):
        parse_manifest(data, rb_dir)
    data["proven"] = {"vibes": "tests/core/test_runbook_claims.py"}
    with pytest.raises(SchemaError, match="is not one of"):
        parse_manifest(data, rb_dir)
    data["proven"] = {"lab": "tests/core/test_runbook_claims.py"}
    data["refuses"] = ["not", "a", "string"]
    with pytest.raises(SchemaError, match="refuses must be a string"):
        parse_manifest(data, rb_dir)


@pytest.mark.parametrize("rid", sorted(CATALOG.runbooks))
def test_every_runbook_says_what_it_refuses_how_it_rolls_back_and_where_it_was_proven(rid: str):
    """docs/runbooks.md must answer a clinic sysadmin's three questions for every runbook."""
    rb = CATALOG.runbooks[rid]
    assert rb.refuses.strip(), f"{rid}: no `refuses`"
    assert rb.rollback_note.strip(), f"{rid}: no `rollback_note`"
    assert rb.proven, f"{rid}: no [proven] claim"
    if rb.platform == "linux":
        assert "realhost" in rb.proven, f"{rid}: a Linux runbook is proven on the real host"
    if rb.platform == "windows":
        assert "lab" in rb.proven, f"{rid}: a Windows runbook is proven on the lab model"
