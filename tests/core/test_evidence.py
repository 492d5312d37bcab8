"""Evidence bundles: schema, PHI scrubbing at creation, signing, chain links and the size cap."""

from __future__ import annotations

import copy

import pytest

from osiris_core import canonical
from osiris_core.errors import SchemaError, SignatureError
from osiris_core.evidence import (
    GENESIS_HASH,
    MAX_ENVELOPE_BYTES,
    Chain,
    bundle_hash,
    envelope_bytes,
    new_bundle,
    sign_bundle,
    validate_bundle,
    verify_envelope,
)
from osiris_core.keys import Signer, appliance_key_name


def _fields(**kw):
    base = dict(
        site_id="site-1",
        appliance_id="app-1",
        host_id="dc01",
        check="windows_firewall",
        outcome="compliant",
        seq=1,
        prev_hash=GENESIS_HASH,
    )
    base.update(kw)
    return base


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(appliance_key_name("app-1"))


def test_new_bundle_has_every_field_and_validates() -> None:
    b = new_bundle(**_fields())
    validate_bundle(b)
    assert b["schema"] == "osiris.evidence/1"
    assert b["clock"] == {"ntp_ok": False, "offset_ms": None, "source": "unchecked"}
    canonical.parse_time(b["started_at"])


def test_phi_is_scrubbed_at_creation() -> None:
    b = new_bundle(
        **_fields(
            action_taken="Called patient at 555-123-4567 about SSN 123-45-6789",
            pre_state={"note": "contact jane.doe@example.com", "patient_name": "Jane Doe"},
        )
    )
    text = canonical.dumps(b).decode()
    for secret in ("555-123-4567", "123-45-6789", "jane.doe@example.com", "Jane Doe"):
        assert secret not in text


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("clock"),
        lambda b: b.update(extra=1),
        lambda b: b.update(seq=0),
        lambda b: b.update(seq=True),
        lambda b: b.update(outcome="ok"),
        lambda b: b.update(tier="L9"),
        lambda b: b.update(prev_hash="sha256:abc"),
        lambda b: b.update(controls=["HIPAA"]),
        lambda b: b.update(finished_at="2020-01-01T00:00:00.000Z"),
        lambda b: b.update(started_at="2026-11-25 10:00"),
        lambda b: b.update(deployment_mode="reseller", reseller_id=None),
        lambda b: b.update(clock={"ntp_ok": "yes", "offset_ms": 1, "source": "x"}),
        lambda b: b.update(
            attachments=[
                {"name": "../x", "sha256": "0" * 64, "size": 1, "media_type": "text/plain"}
            ]
        ),
        lambda b: b.update(runbook_id="rm -rf /"),
    ],
)
def test_schema_violations_are_refused(mutate) -> None:
    b = new_bundle(**_fields())
    bad = copy.deepcopy(b)
    mutate(bad)
    with pytest.raises(SchemaError):
        validate_bundle(bad)


def test_first_bundle_must_link_to_genesis() -> None:
    with pytest.raises(SchemaError):
        new_bundle(**_fields(prev_hash="sha256:" + "1" * 64))


def test_floats_are_refused_at_creation() -> None:
    with pytest.raises(SchemaError):
        new_bundle(**_fields(post_state={"cpu": 0.5}))


def test_sign_and_verify(signer: Signer) -> None:
    env = sign_bundle(new_bundle(**_fields()), signer)
    verifiers = {signer.key_id_hex: signer.verifier()}
    assert verify_envelope(env, verifiers).name == "osiris/appliance/app-1"
    tampered = copy.deepcopy(env)
    tampered["bundle"]["outcome"] = "healed"
    with pytest.raises(SignatureError):
        verify_envelope(tampered, verifiers)
    with pytest.raises(SignatureError):
        verify_envelope(env, {})


def test_one_appliance_key_cannot_vouch_for_another(signer: Signer) -> None:
    env = sign_bundle(new_bundle(**_fields(appliance_id="app-2")), signer)
    with pytest.raises(SignatureError, match="belongs to"):
        verify_envelope(env, {signer.key_id_hex: signer.verifier()})


def test_chain_links_and_refuses_wrong_order() -> None:
    chain = Chain("app-1")
    b1 = chain.next(**{k: v for k, v in _fields().items() if k not in ("seq", "prev_hash")})
    h1 = chain.advance(b1)
    assert h1 == bundle_hash(b1)
    b2 = chain.next(**{k: v for k, v in _fields().items() if k not in ("seq", "prev_hash")})
    assert b2["seq"] == 2 and b2["prev_hash"] == h1
    with pytest.raises(SchemaError):
        chain.advance(b1)


def test_envelope_size_cap(signer: Signer) -> None:
    big = new_bundle(**_fields(post_state={"output": "x" * (MAX_ENVELOPE_BYTES)}))
    with pytest.raises(SchemaError, match="attachment"):
        sign_bundle(big, signer)
    ok = new_bundle(**_fields(post_state={"output": "x" * 1000}))
    assert len(envelope_bytes(sign_bundle(ok, signer))) < MAX_ENVELOPE_BYTES
