"""Every catalogue id follows the one scheme docs/runbooks.md (Id scheme) documents.

Check ids: ``<topic>`` for a check every platform runs, ``<platform>_<topic>`` for one platform's
own check, and a bare ``<topic>`` on the appliance only for the appliance's own records (its
evidence pipeline, policy, decommission). Runbook ids: ``RB-WIN-<AREA>-NNN`` (Windows),
``RB-NIX-<AREA>-NNN`` (the appliance), ``LIN-<AREA>-NNN`` (Linux). Rule ids:
``L1-<WIN|NIX|LIN>-<AREA>-NNN[-TAG]``, with the platform and area of the runbook the rule runs.
Ids already signed into evidence are never renamed to fit: a renamed check keeps its former id
as an alias (tests/core/test_check_aliases.py).
"""

from __future__ import annotations

import re

import pytest

from osiris_core.catalog import PLATFORMS, load_catalog

CHECK_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # the evidence format's check id
RUNBOOK_RE = re.compile(r"^(?P<prefix>RB-WIN|RB-NIX|LIN)-(?P<area>[A-Z]+)-[0-9]{3}$")
RULE_RE = re.compile(r"^L1-(?P<platform>WIN|NIX|LIN)-(?P<area>[A-Z]+)-[0-9]{3}(-[A-Z0-9]+)*$")
PLATFORM_OF_PREFIX = {"RB-WIN": "windows", "RB-NIX": "nixos", "LIN": "linux"}
RULE_PLATFORM = {"windows": "WIN", "nixos": "NIX", "linux": "LIN"}


def _platform_prefix(check_id: str) -> str | None:
    head = check_id.split("_", 1)[0]
    return head if head in PLATFORMS and "_" in check_id else None


@pytest.mark.parametrize("check_id", sorted(load_catalog().checks))
def test_check_ids(check_id: str) -> None:
    chk = load_catalog().checks[check_id]
    assert CHECK_RE.match(check_id)
    for alias in chk.aliases:
        assert CHECK_RE.match(alias), alias
    prefix = _platform_prefix(check_id)
    if prefix is not None:
        assert chk.platforms == (prefix,), f"{check_id} is {prefix}-only by its name"
    else:
        assert set(chk.platforms) == set(PLATFORMS) or chk.platforms == ("nixos",), check_id


def test_runbook_and_rule_ids() -> None:
    cat = load_catalog()
    for rb in cat.runbooks.values():
        m = RUNBOOK_RE.match(rb.id)
        assert m, rb.id
        assert PLATFORM_OF_PREFIX[m["prefix"]] == rb.platform, rb.id
    for rule in cat.rules:
        m = RULE_RE.match(rule.id)
        assert m, rule.id
        if rule.runbook_id is not None:
            rb = cat.runbooks[rule.runbook_id]
            assert m["platform"] == RULE_PLATFORM[rb.platform], rule.id
            assert m["area"] == RUNBOOK_RE.match(rb.id)["area"], rule.id  # type: ignore[index]


@pytest.mark.parametrize(
    ("check_id", "prefix"),
    [("linux_ssh", "linux"), ("nixos_generation", "nixos"), ("disk_space", None),
     ("windows", None), ("policy_change", None)],
)  # fmt: skip
def test_the_scheme_reads_a_platform_prefix(check_id: str, prefix: str | None) -> None:
    assert _platform_prefix(check_id) == prefix
