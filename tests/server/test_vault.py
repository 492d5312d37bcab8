"""Vault: real keyring files, real permissions, real ciphertexts."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from osiris_core.errors import KeyPermissionError, OsirisError
from osiris_server.vault import Vault, VaultError

SECRET = b"Corr3ct-Horse-Battery!"
CTX = "site:s1/cred:c1"


@pytest.fixture
def vault(tmp_path):
    return Vault.create(tmp_path / "vault.json")


def _raw_keys(path) -> list[bytes]:
    doc = json.loads(path.read_text())
    return [base64.b64decode(v) for v in doc["keys"].values()]


def test_create_file_mode_and_format(tmp_path):
    path = tmp_path / "vault.json"
    v = Vault.create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["primary"] == v.primary
    assert list(doc["keys"]) == [v.primary]
    assert len(base64.b64decode(doc["keys"][v.primary])) == 32
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_create_refuses_overwrite(tmp_path):
    path = tmp_path / "vault.json"
    Vault.create(path)
    before = path.read_bytes()
    with pytest.raises(VaultError):
        Vault.create(path)
    assert path.read_bytes() == before


def test_round_trip_and_reopen(tmp_path):
    path = tmp_path / "vault.json"
    v = Vault.create(path)
    token = v.encrypt(SECRET, CTX)
    assert token.startswith(f"v1:{v.primary}:")
    assert SECRET not in token.encode()
    assert v.decrypt(token, CTX) == SECRET
    assert Vault.open(path).decrypt(token, CTX) == SECRET
    # random nonce: the same plaintext gives different tokens
    assert v.encrypt(SECRET, CTX) != token
    assert v.decrypt(v.encrypt(b"", CTX), CTX) == b""


def test_wrong_context_fails(vault):
    token = vault.encrypt(SECRET, CTX)
    with pytest.raises(VaultError) as exc:
        vault.decrypt(token, "site:s2/cred:c1")
    assert exc.value.code == "E_VAULT"
    assert isinstance(exc.value, OsirisError)
    with pytest.raises(VaultError):
        vault.decrypt(token, "site:s1/cred:c2")


def test_tampered_ciphertext_fails(vault):
    token = vault.encrypt(SECRET, CTX)
    prefix, kid, b64 = token.split(":")
    blob = bytearray(base64.b64decode(b64))
    for pos in (0, 24, len(blob) - 1):  # nonce, body, tag
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        forged = f"{prefix}:{kid}:{base64.b64encode(bytes(bad)).decode()}"
        with pytest.raises(VaultError):
            vault.decrypt(forged, CTX)
    for garbage in (
        "",
        "v1",
        "v2:" + kid + ":" + b64,
        f"v1:{kid}:!!!",
        f"v1:nokey:{b64}",
        f"v1:{kid}:" + base64.b64encode(b"short").decode(),
    ):
        with pytest.raises(VaultError):
            vault.decrypt(garbage, CTX)


def test_rotation_rewrap_retire(tmp_path):
    path = tmp_path / "vault.json"
    v = Vault.create(path)
    old_kid = v.primary
    old_token = v.encrypt(SECRET, CTX)
    new_kid = v.rotate()
    assert new_kid != old_kid and v.primary == new_kid
    # persisted: a fresh open sees both keys
    v2 = Vault.open(path)
    assert v2.primary == new_kid and set(v2.key_ids) == {old_kid, new_kid}
    assert v2.decrypt(old_token, CTX) == SECRET
    assert v2.needs_rewrap(old_token)
    new_token = v2.rewrap(old_token, CTX)
    assert new_token.split(":")[1] == new_kid
    assert not v2.needs_rewrap(new_token)
    assert v2.rewrap(new_token, CTX) == new_token
    assert v2.decrypt(new_token, CTX) == SECRET
    # rewrap checks the context too
    with pytest.raises(VaultError):
        v2.rewrap(old_token, "site:other/cred:c1")
    # the primary cannot be retired; the old key can, after which old tokens fail
    with pytest.raises(VaultError):
        v2.retire(new_kid)
    v2.retire(old_kid)
    with pytest.raises(VaultError):
        v2.retire(old_kid)
    v3 = Vault.open(path)
    assert v3.key_ids == [new_kid]
    with pytest.raises(VaultError):
        v3.decrypt(old_token, CTX)
    assert v3.decrypt(new_token, CTX) == SECRET


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620])
def test_open_refuses_loose_permissions(tmp_path, mode):
    path = tmp_path / "vault.json"
    Vault.create(path)
    os.chmod(path, mode)
    with pytest.raises(KeyPermissionError):
        Vault.open(path)
    os.chmod(path, 0o600)
    Vault.open(path)
    os.chmod(path, 0o400)
    Vault.open(path)


def test_open_rejects_garbage_and_missing(tmp_path):
    path = tmp_path / "vault.json"
    with pytest.raises(VaultError):
        Vault.open(path)
    for content in (
        "not json",
        '{"primary": "x", "keys": {}}',
        '{"keys": {"a": "AAAA"}}',
        '{"primary": "a", "keys": {"a": "AAAA"}}',
    ):
        path.write_text(content)
        os.chmod(path, 0o600)
        with pytest.raises(OsirisError):
            Vault.open(path)


def test_key_never_in_repr_or_errors(tmp_path):
    path = tmp_path / "vault.json"
    v = Vault.create(path)
    v.rotate()
    keys = _raw_keys(path)
    texts = [repr(v), str(v)]
    token = v.encrypt(SECRET, CTX)
    for bad_ctx in ("other", CTX + "x"):
        with pytest.raises(VaultError) as exc:
            v.decrypt(token, bad_ctx)
        texts.append(str(exc.value))
        texts.append(repr(exc.value))
    with pytest.raises(VaultError) as exc:
        v.retire(v.primary)
    texts.append(str(exc.value))
    blob = "\n".join(texts)
    for k in keys:
        assert base64.b64encode(k).decode() not in blob
        assert k.hex() not in blob
    assert SECRET.decode() not in blob
