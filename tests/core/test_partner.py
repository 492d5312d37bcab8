"""The partner/reseller link: which reseller_id a bundle may carry for its site's partner."""

from __future__ import annotations

import pytest

from osiris_core.errors import ExitCode, InputError
from osiris_core.evidence import new_bundle
from osiris_core.partner import RESELLER_FIELD, ResellerMismatch, check_reseller


@pytest.mark.parametrize(
    ("reseller_id", "partner_id"),
    [(None, None), (None, "lakeside"), ("lakeside", "lakeside")],
)
def test_accepted_claims(reseller_id: str | None, partner_id: str | None) -> None:
    check_reseller(reseller_id, partner_id)  # no claim, or the site's own partner


@pytest.mark.parametrize(
    ("reseller_id", "partner_id", "message"),
    [
        ("rival", "lakeside", "'rival' is not this site's partner"),
        ("lakeside", None, "this site has no partner"),
        ("Lakeside", "lakeside", "is not this site's partner"),  # exact, no case folding
    ],
)
def test_refused_claims(reseller_id: str, partner_id: str | None, message: str) -> None:
    with pytest.raises(ResellerMismatch, match=message) as info:
        check_reseller(reseller_id, partner_id)
    err = info.value
    assert err.code == "E_RESELLER" and err.http_status == 403
    assert isinstance(err, InputError) and err.exit_code == ExitCode.USAGE
    if partner_id:
        assert repr(partner_id) not in str(err)  # never names the site's actual partner


def test_the_field_is_the_bundles_reseller_id() -> None:
    """The link names the wire field the evidence format signs (not renamed)."""
    b = new_bundle(
        seq=1, prev_hash="sha256:" + "0" * 64, site_id="s", appliance_id="a", host_id="h",
        check="firewall", outcome="compliant", deployment_mode="reseller", reseller_id="lakeside",
    )  # fmt: skip
    assert RESELLER_FIELD == "reseller_id" and b[RESELLER_FIELD] == "lakeside"
