"""``runbooks.params`` in the check-in response: optional (old servers omit it), and when
present only ``{runbook_id: {param_name: bool | int | str}}`` passes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from osiris_core.errors import SchemaError
from osiris_core.protocol import validate_checkin_response

BASE: dict[str, Any] = {
    "server_time": "2026-01-01T00:00:00.000Z",
    "next_checkin_s": 60,
    "targets": [],
    "runbooks": {"enabled": ["RB-WIN-PATCH-001"], "disabled": []},
    "rules": {
        "version": "v1",
        "signed": {
            "rules": [],
            "version": "v1",
            "sig": {"alg": "ed25519", "key_id": "0a1b2c3d", "value": "AAAA"},
        },
    },
    "window": {"days": ["sun"], "start": "02:00", "duration_min": 60, "timezone": "UTC"},
    "orders": [],
}


def _with(params: Any) -> dict[str, Any]:
    resp = copy.deepcopy(BASE)
    resp["runbooks"]["params"] = params
    return resp


def test_without_params_still_valid() -> None:
    validate_checkin_response(copy.deepcopy(BASE))


def test_good_params() -> None:
    validate_checkin_response(_with({}))
    validate_checkin_response(
        _with(
            {
                "RB-WIN-PATCH-001": {"critical_overdue_days": 15, "allow_reboot": False},
                "RB-WIN-NET-001": {"dns_servers": "10.0.0.1"},
            }
        )  # fmt: skip
    )


@pytest.mark.parametrize(
    "params",
    [
        [],
        {"RB-WIN-PATCH-001": []},
        {"RB-WIN-PATCH-001": {"Bad-Name": 1}},
        {"RB-WIN-PATCH-001": {"n": 1.5}},
        {"RB-WIN-PATCH-001": {"n": None}},
        {"RB-WIN-PATCH-001": {"n": {"nested": 1}}},
        {"RB-WIN-PATCH-001": {"n": "x" * 513}},
        {"RB-WIN-PATCH-001": {"n": 2**60}},
        {"R" * 65: {"n": 1}},
    ],
)
def test_bad_params_refused(params: Any) -> None:
    with pytest.raises(SchemaError, match="runbooks.params"):
        validate_checkin_response(_with(params))


def test_unknown_runbooks_field_still_refused() -> None:
    resp = copy.deepcopy(BASE)
    resp["runbooks"]["paramz"] = {}
    with pytest.raises(SchemaError):
        validate_checkin_response(resp)
