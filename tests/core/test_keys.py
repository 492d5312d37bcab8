"""Ed25519 keys: the signed-note text formats, interop, and private key files on a real disk."""

from __future__ import annotations

import base64
import hashlib
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from osiris_core import keys
from osiris_core.errors import KeyFormatError, KeyPermissionError
from osiris_core.keys import (
    Signer,
    Verifier,
    appliance_key_name,
    key_id,
    load_private_key,
    write_private_key,
)

SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def test_golden_vector() -> None:
    s = Signer.from_skey(SKEY)
    assert s.vkey == VKEY
    assert s.skey == SKEY
    assert s.name == "PeterNeumann"
    assert s.key_id_hex == "c74f20a3"
    assert s.key_id == bytes.fromhex("c74f20a3")
    assert s.key_type == 0x01
    v = Verifier.from_vkey(VKEY)
    assert v.public == s.public == base64.b64decode(VKEY.split("+", 2)[2])[1:]
    assert v.vkey == VKEY
    assert v == s.verifier()


def test_key_id_formula_independently() -> None:
    s = Signer.generate("example.com/log")
    want = hashlib.sha256(b"example.com/log\n\x01" + s.public).digest()[:4]
    assert s.key_id == want == key_id("example.com/log", s.public)
    c = Signer.generate("witness.example/w1", key_type=0x04)
    assert c.key_id == hashlib.sha256(b"witness.example/w1\n\x04" + c.public).digest()[:4]
    assert c.vkey.split("+")[2].startswith(base64.b64encode(b"\x04").decode()[:1])
    assert base64.b64decode(c.vkey.split("+", 2)[2])[0] == 0x04


def test_same_key_different_type_or_name_changes_id() -> None:
    s = Signer.from_skey(SKEY)
    seed = base64.b64decode(SKEY.split("+", 4)[4])[1:]
    cos = Signer("PeterNeumann", seed, key_type=0x04)
    other = Signer("PeterNeumann2", seed)
    assert cos.public == s.public
    assert len({s.key_id, cos.key_id, other.key_id}) == 3
    assert Signer.from_skey(cos.skey).key_type == 0x04
    assert Verifier.from_vkey(cos.vkey).key_type == 0x04


def test_generate_round_trip_and_uniqueness() -> None:
    a, b = Signer.generate("a"), Signer.generate("a")
    assert a.public != b.public
    a2 = Signer.from_skey(a.skey)
    assert a2.public == a.public and a2.key_id == a.key_id
    assert Verifier.from_vkey(a.vkey) == a.verifier()
    assert "PRIVATE" not in repr(a) and a.skey.split("+", 4)[4] not in repr(a)


def test_sign_verify_and_interop_with_cryptography() -> None:
    s = Signer.generate("osiris/appliance/a1")
    msg = b"evidence bytes"
    sig = s.sign(msg)
    assert len(sig) == 64
    v = Verifier.from_vkey(s.vkey)
    assert v.verify(msg, sig)
    # An independent Ed25519 implementation accepts it.
    Ed25519PublicKey.from_public_bytes(v.public).verify(sig, msg)
    assert not v.verify(msg + b"x", sig)
    bad = bytearray(sig)
    bad[10] ^= 1
    assert not v.verify(msg, bytes(bad))
    assert not Signer.generate("osiris/appliance/a1").verifier().verify(msg, sig)


@pytest.mark.parametrize("sig", [b"", b"\x00" * 63, b"\x00" * 65, b"\xff" * 64, None, "x" * 64, 7])
def test_verify_never_raises(sig: object) -> None:
    v = Signer.generate("n").verifier()
    assert v.verify(b"m", sig) is False  # type: ignore[arg-type]


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # short id
        "PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not hex
        "Peter+Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # '+' in name
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # empty name
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # bad base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",  # noncanonical
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
        "PeterNeumann+c74f20a3+" + _b64(b"\x01" + b"\x00" * 31),  # 32 bytes
        "PeterNeumann+c74f20a3+" + _b64(b"\x02" + b"\x00" * 32),  # ECDSA type
        "PeterNeumann+c74f20a3+" + _b64(b"\x01" + b"\x00" * 33),  # 34 bytes
        "PeterNeumann\u2003x+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        None,
    ],
)
def test_bad_vkeys(vkey: object) -> None:
    with pytest.raises(KeyFormatError):
        Verifier.from_vkey(vkey)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "skey",
    [
        SKEY.replace("PRIVATE+KEY+", ""),
        SKEY.replace("PRIVATE", "PUBLIC"),
        SKEY.replace("c74f20a3", "c74f20a4"),
        SKEY[:-1],
        VKEY,
        "PRIVATE+KEY+PeterNeumann+c74f20a3+" + _b64(b"\x03" + b"\x00" * 32),
        "PRIVATE+KEY+",
    ],
)
def test_bad_skeys(skey: str) -> None:
    with pytest.raises(KeyFormatError):
        Signer.from_skey(skey)


def test_uppercase_hex_id_accepted_like_go() -> None:
    assert Verifier.from_vkey(VKEY.replace("c74f20a3", "C74F20A3")).vkey == VKEY


def test_appliance_key_name() -> None:
    assert appliance_key_name("a1b2") == "osiris/appliance/a1b2"
    for bad in ("", "has space", "a+b", "a\nb"):
        with pytest.raises(KeyFormatError):
            appliance_key_name(bad)


# ---------------------------------------------------------------- key files


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_and_load_key_file(tmp_path) -> None:
    s = Signer.generate("osiris/appliance/a1")
    p = tmp_path / "keys" / "appliance.skey"
    write_private_key(p, s)
    assert _mode(p) == 0o600
    assert p.read_text() == s.skey + "\n"
    loaded = load_private_key(p)
    assert loaded.public == s.public and loaded.name == s.name
    assert loaded.sign(b"x") == s.sign(b"x")
    assert os.listdir(p.parent) == ["appliance.skey"]  # no temp files left behind


def test_write_ignores_permissive_umask_and_replaces_loose_file(tmp_path) -> None:
    p = tmp_path / "k.skey"
    p.write_text("old")
    p.chmod(0o666)
    old = os.umask(0)
    try:
        write_private_key(p, Signer.generate("k"))
    finally:
        os.umask(old)
    assert _mode(p) == 0o600
    load_private_key(p)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o660, 0o777])
def test_load_refuses_group_or_other_bits(tmp_path, mode: int) -> None:
    p = tmp_path / "k.skey"
    write_private_key(p, Signer.generate("k"))
    p.chmod(mode)
    with pytest.raises(KeyPermissionError) as e:
        load_private_key(p)
    assert str(p) in str(e.value) and "chmod 600" in str(e.value)
    assert e.value.code == "E_KEY_PERMS"
    p.chmod(0o600)  # the fix the message names works
    load_private_key(p)


def test_load_accepts_owner_only_modes(tmp_path) -> None:
    p = tmp_path / "k.skey"
    write_private_key(p, Signer.generate("k"))
    for mode in (0o400, 0o600, 0o700):
        p.chmod(mode)
        load_private_key(p)


def test_load_errors_are_key_errors(tmp_path) -> None:
    with pytest.raises(KeyFormatError):
        load_private_key(tmp_path / "missing")
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(KeyFormatError):
        load_private_key(d)
    for content in (
        b"",
        b"not a key\n",
        Signer.generate("x").vkey.encode(),
        b"\xff\xfe",
        b"A" * 9000,
    ):
        p = tmp_path / "bad.skey"
        p.write_bytes(content)
        p.chmod(0o600)
        with pytest.raises(KeyFormatError):
            load_private_key(p)


def test_write_is_atomic_on_failure(tmp_path, monkeypatch) -> None:
    p = tmp_path / "k.skey"
    first = Signer.generate("k")
    write_private_key(p, first)

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(keys.os, "replace", boom)
    with pytest.raises(OSError):
        write_private_key(p, Signer.generate("k"))
    monkeypatch.undo()
    assert load_private_key(p).public == first.public  # old key intact
    assert os.listdir(tmp_path) == ["k.skey"]  # temp file cleaned up
