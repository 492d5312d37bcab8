"""osiris_core.timestamp against real tokens from the lab TSA (``openssl ts -reply``).

The attacks: a token from another TSA (wrong chain), a flipped byte (tampered), a token over
another checkpoint (reused), a TSA certificate without the timeStamping EKU, a reply to another
nonce, and garbage. Each must be refused with a TsaError that says which.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from osiris_core import timestamp as ts
from osiris_lab.tsa import LabTsa
from tests.tsa_fixtures import lab_tsa, other_tsa  # noqa: F401

NOTE = "test.osiris/log\n7\n" + "A" * 43 + "=\n\n— test.osiris/log AAAAsig\n"
OTHER = "test.osiris/log\n8\n" + "B" * 43 + "=\n\n— test.osiris/log AAAAsig\n"


def stamp(tsa: LabTsa, note: str = NOTE) -> tuple[bytes, int]:
    import rfc3161_client as r

    req = (
        r.TimestampRequestBuilder()
        .data(ts.checkpoint_body(note))
        .hash_algorithm(r.HashAlgorithm.SHA256)
        .build()
    )
    resp = httpx.post(
        tsa.url, content=req.as_bytes(), headers={"Content-Type": "application/timestamp-query"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/timestamp-reply"
    return resp.content, req.nonce


def test_body_is_the_text_up_to_and_including_the_blank_line() -> None:
    assert ts.checkpoint_body(NOTE) == ("test.osiris/log\n7\n" + "A" * 43 + "=\n\n").encode()
    # the same body whatever cosignature lines a served copy carries
    assert ts.checkpoint_body(NOTE + "— osiris/appliance/x BBBB\n") == ts.checkpoint_body(NOTE)
    assert ts.body_sha256(NOTE) == hashlib.sha256(ts.checkpoint_body(NOTE)).hexdigest()
    with pytest.raises(ts.TsaError):
        ts.checkpoint_body("no blank line\n")


def test_lab_tsa_token_verifies_against_its_ca(lab_tsa: LabTsa) -> None:  # noqa: F811
    der, nonce = stamp(lab_tsa)
    info = ts.verify_token(der, NOTE, [lab_tsa.ca_pem], nonce=nonce)
    assert info["sha256"] == ts.body_sha256(NOTE)
    assert info["tsa"] == "CN=Osiris Lab TSA"
    assert info["gen_time"].endswith("Z") and len(info["gen_time"]) == 24
    assert ts.token_info(der) == {"gen_time": info["gen_time"], "tsa": info["tsa"]}
    # the body alone is accepted too
    assert ts.verify_token(der, ts.checkpoint_body(NOTE), [lab_tsa.ca_pem])["sha256"]


def test_wrong_tsa_chain_is_refused(lab_tsa: LabTsa, other_tsa: LabTsa) -> None:  # noqa: F811
    der, _ = stamp(lab_tsa)
    with pytest.raises(ts.TsaError, match="pinned TSA chain"):
        ts.verify_token(der, NOTE, [other_tsa.ca_pem])
    # and the other TSA's own token verifies only against its own CA
    der2, _ = stamp(other_tsa)
    assert ts.verify_token(der2, NOTE, [other_tsa.ca_pem])["tsa"] == "CN=Other Lab TSA"
    with pytest.raises(ts.TsaError):
        ts.verify_token(der2, NOTE, [lab_tsa.ca_pem])


def test_tampered_token_is_refused(lab_tsa: LabTsa) -> None:  # noqa: F811
    der, _ = stamp(lab_tsa)
    refused = 0
    # flip one byte at many places: the signature, the TSTInfo, the certificate
    for i in range(0, len(der), max(1, len(der) // 40)):
        bad = bytearray(der)
        bad[i] ^= 0x01
        try:
            ts.verify_token(bytes(bad), NOTE, [lab_tsa.ca_pem])
        except ts.TsaError:
            refused += 1
    assert refused == len(range(0, len(der), max(1, len(der) // 40)))


def test_token_over_another_checkpoint_is_refused(lab_tsa: LabTsa) -> None:  # noqa: F811
    der, _ = stamp(lab_tsa, OTHER)
    with pytest.raises(ts.TsaError, match="another checkpoint"):
        ts.verify_token(der, NOTE, [lab_tsa.ca_pem])


def test_reply_to_another_nonce_is_refused(lab_tsa: LabTsa) -> None:  # noqa: F811
    der, nonce = stamp(lab_tsa)
    with pytest.raises(ts.TsaError, match="[Nn]once"):
        ts.verify_token(der, NOTE, [lab_tsa.ca_pem], nonce=nonce + 1)


def test_tsa_certificate_without_timestamping_eku_cannot_sign(tmp_path: Path) -> None:
    """openssl itself will not sign a token with a certificate lacking the timeStamping EKU
    (the lab TSA answers 500), so no such token can be made here; rfc3161-client's own check
    (critical EKU with id-kp-timeStamping) is what would refuse one from another tool."""
    with LabTsa(tmp_path / "noeku", "No EKU TSA", eku=False) as bad:
        with pytest.raises(AssertionError, match="signer certificate purpose"):
            stamp(bad)


def test_garbage_and_bad_pins_are_clear_errors(lab_tsa: LabTsa) -> None:  # noqa: F811
    der, _ = stamp(lab_tsa)
    for junk in (b"", b"\x30\x03\x02\x01\x00", b"not der at all", der[:50]):
        with pytest.raises(ts.TsaError):
            ts.verify_token(junk, NOTE, [lab_tsa.ca_pem])
    with pytest.raises(ts.TsaError, match="PEM"):
        ts.verify_token(
            der, NOTE, [b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
        )
    with pytest.raises(ts.TsaError, match="pinned"):
        ts.verify_token(der, NOTE, [])
    with pytest.raises(ts.TsaError):
        ts.token_info(b"junk")


def test_openssl_alone_verifies_the_token_as_docs_auditor_says(
    lab_tsa: LabTsa,  # noqa: F811
    tmp_path: Path,
) -> None:
    """docs/auditor.md: `sed '/^$/q' checkpoint > body; openssl ts -verify -data body ...`."""
    import subprocess

    der, _ = stamp(lab_tsa)
    (tmp_path / "checkpoint").write_text(NOTE)
    (tmp_path / "checkpoint.tsr").write_bytes(der)
    sh = (
        "sed '/^$/q' checkpoint > body && openssl ts -verify -data body -in checkpoint.tsr "
        f"-CAfile {lab_tsa.ca_file}"
    )
    p = subprocess.run(["sh", "-c", sh], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0 and "Verification: OK" in p.stdout, p.stdout + p.stderr
    assert (tmp_path / "body").read_bytes() == ts.checkpoint_body(NOTE)
