"""The one severity scale (osiris_core/severity.py) and each runbook's stated escalation
severity (issue 16 item 1)."""

from __future__ import annotations

import pytest

from osiris_agent.healing.l3 import build_incident, severity_for
from osiris_core import catalog, severity
from osiris_core.errors import SchemaError


def test_the_scale_is_ordered_and_closed() -> None:
    assert severity.SEVERITIES == ("low", "medium", "high", "critical")
    assert [severity.rank(s) for s in severity.SEVERITIES] == [0, 1, 2, 3]
    assert severity.at_least("high", severity.DEFAULT_ALERT_THRESHOLD)
    assert severity.at_least("critical", "high")
    assert not severity.at_least("medium", "high")
    assert severity.highest("low", "critical", "medium") == "critical"
    assert severity.lower_to("critical", "high") == "high"
    assert severity.lower_to("low", "high") == "low"


@pytest.mark.parametrize("bad", [None, "", "CRITICAL", "urgent", 3, "warning ", ["high"]])
def test_anything_off_the_scale_is_a_schema_error(bad) -> None:
    with pytest.raises(SchemaError, match="must be one of low, medium, high, critical"):
        severity.rank(bad)  # type: ignore[arg-type]
    with pytest.raises(SchemaError):
        severity.normalise(bad)


def test_legacy_words_map_and_the_senders_own_word_wins() -> None:
    assert severity.normalise("info") == "low"
    assert severity.normalise("warning") == "medium"
    assert severity.normalise("warning", "high") == "high"  # an old agent's details.agent_severity
    assert severity.normalise("warning", "bogus") == "medium"
    assert severity.normalise("critical", "low") == "critical"  # the scale's word is not overridden
    assert not severity.is_severity("info")


def test_every_runbook_states_its_escalation_severity() -> None:
    cat = catalog.load_catalog()
    for rb in cat.runbooks.values():
        assert rb.escalation_severity in severity.SEVERITIES, rb.id
        if "encryption" in rb.check or "bitlocker" in rb.check:
            assert rb.escalation_severity == "critical", rb.id  # an unencrypted disk pages
    assert {rb.escalation_severity for rb in cat.runbooks.values()} >= {"high", "critical"}


def test_the_agent_escalates_at_the_manifests_word() -> None:
    runbooks = catalog.load_catalog().runbooks.values()
    rb = next(r for r in runbooks if r.escalation_severity == "high")
    inc = build_incident(host_id="dc01", check=rb.check, runbook_id=rb.id,
                         escalation_severity=rb.escalation_severity, status="drift",
                         observed={}, tried=[], reason="verify failed")  # fmt: skip
    assert inc["severity"] == "high"
    # a check that could not run is at most high; an unknown word still reaches a person
    assert severity_for("critical", "error") == "high"
    assert severity_for("low", "error") == "low"
    assert severity_for("nonsense", "drift") == "high"
