"""The pattern signature: identifiers never survive, equal drifts at different clinics are one
pattern, and what a hostile appliance sends is re-masked and re-hashed."""

from __future__ import annotations

from osiris_core import pattern


def _obs(host: str, ip: str, n: int, when: str) -> dict:
    return {"host": host, "address": ip, "overdue": n, "since": when, "service": "stopped",
            "enabled": False, "id": "a3f1c9e2-77aa-4b1e-9c2d-1f0e2d3c4b5a",
            "users": [f"user{n}", "svc-backup"], "note": "Dr. Smith's PC is off"}  # fmt: skip


def test_two_clinics_same_drift_same_pattern_and_no_identifier() -> None:
    a = pattern.signature("windows_updates", "RB-WIN-PATCH-001",
                          _obs("dc01.riverside.local", "10.0.0.5", 3, "2026-01-02T03:04:05Z"),
                          "RB-WIN-PATCH-001", {"critical_overdue_days": 7})  # fmt: skip
    b = pattern.signature("windows_updates", "RB-WIN-PATCH-001",
                          _obs("srv9.oak.example", "192.168.1.9", 41, "2026-03-04"),
                          "RB-WIN-PATCH-001", {"critical_overdue_days": 7})  # fmt: skip
    assert a == b
    text = repr(a)
    for leak in ("dc01", "riverside", "10.0.0.5", "2026", "a3f1", "Smith", "user3", "41"):
        assert leak not in text, leak
    s = a["shape"]
    assert s["service"] == "stopped" and s["enabled"] is False  # words and booleans kept
    assert (s["host"], s["address"], s["overdue"], s["since"], s["id"], s["note"]) == (
        "<host>", "<ip>", "<num>", "<time>", "<id>", "<text>")  # fmt: skip


def test_other_params_or_runbook_are_another_pattern() -> None:
    obs = _obs("h", "10.0.0.1", 1, "2026-01-01")
    one = pattern.signature("linux_accounts", "LIN-ACCT-002", obs, "LIN-ACCT-002", {"x": 1})
    assert (
        one["sha256"]
        != pattern.signature("linux_accounts", "LIN-ACCT-002", obs, "LIN-ACCT-002", {"x": 2})[
            "sha256"
        ]
    )
    assert (
        one["sha256"]
        != pattern.signature("linux_accounts", "LIN-ACCT-002", obs, "LIN-ACCT-001", {"x": 1})[
            "sha256"
        ]
    )


def test_renormalise_remasks_and_rehashes_what_an_appliance_sent() -> None:
    sent = pattern.signature("linux_accounts", "LIN-ACCT-002", {"k": "stopped"}, "LIN-ACCT-002", {})
    forged = {**sent, "shape": {"host": "dc01.riverside.local", "k": "stopped"},
              "sha256": "0" * 64}  # fmt: skip
    got = pattern.renormalise(forged)
    assert got is not None and got["shape"]["host"] == "<host>" and got["sha256"] != "0" * 64
    assert pattern.renormalise(sent) == sent  # idempotent
    for bad in (
        "x",
        None,
        {"check": "linux_accounts"},
        {**sent, "params": [1]},
        {**sent, "params": {"f": 1.5}},
    ):
        assert pattern.renormalise(bad) is None


def test_shape_is_bounded_and_keys_that_are_data_go() -> None:
    deep: dict = {"a": {}}
    cur = deep["a"]
    for _ in range(10):
        cur["a"] = {}
        cur = cur["a"]
    assert "<deep>" in repr(pattern.shape(deep))
    assert pattern.shape({"dc01.riverside.local": 1, "ok": True}) == {"ok": True}
    assert len(pattern.shape({"l": list(range(100))})["l"]) == 1  # a list is its item shapes
