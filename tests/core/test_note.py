"""C2SP signed notes, checkpoints, cosignatures and tlog-proof files, byte for byte."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from osiris_core.errors import KeyFormatError, NoteError
from osiris_core.keys import Signer
from osiris_core.note import (
    Checkpoint,
    TlogProof,
    add_signature_lines,
    cosign,
    open_note,
    sign_note,
    verify_cosignature,
)

SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GOLDEN_LINE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
    "pRZb6KE6RyyBwJnAM=\n"
)
ORIGIN = "example.com/osiris/log"

LOG = Signer.generate(ORIGIN)
W1 = Signer.generate("osiris/appliance/a1", key_type=0x04)
W2 = Signer.generate("osiris/appliance/a2", key_type=0x04)


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def checkpoint(size: int = 10, root: bytes = b"\x11" * 32, origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin=origin, size=size, root=root)


# ---------------------------------------------------------------- signed notes


def test_golden_vector_byte_for_byte() -> None:
    s = Signer.from_skey(SKEY)
    note = sign_note(TEXT, [s])
    assert note.encode("utf-8") == TEXT.encode() + b"\n" + GOLDEN_LINE.encode("utf-8")
    assert GOLDEN_LINE.encode("utf-8").startswith(b"\xe2\x80\x94 PeterNeumann ")
    opened = open_note(note, [s.verifier()])
    assert opened.text == TEXT
    assert opened.verified == ["PeterNeumann"]
    (name, kid, sig) = opened.signatures[0]
    assert name == "PeterNeumann" and kid.hex() == "c74f20a3" and len(sig) == 64
    assert open_note(note.encode("utf-8"), [s.verifier()]).text == TEXT


def test_multiple_signers_and_unknown_ignored() -> None:
    a, b, c = Signer.generate("a.example"), Signer.generate("b.example"), Signer.generate("c")
    note = sign_note("hello\n", [a, b, c])
    assert note.count("\u2014 ") == 3
    opened = open_note(note, [b.verifier()])
    assert opened.verified == ["b.example"]
    assert [n for n, _, _ in opened.signatures] == ["a.example", "b.example", "c"]
    assert open_note(note, [a.verifier(), c.verifier()]).verified == ["a.example", "c"]


def test_no_known_key_fails() -> None:
    note = sign_note("hello\n", [Signer.generate("a")])
    with pytest.raises(NoteError):
        open_note(note, [Signer.generate("a").verifier()])  # same name, other key: unknown
    with pytest.raises(NoteError):
        open_note(note, [])


def test_known_key_with_bad_signature_rejects_even_with_a_good_one() -> None:
    a, b = Signer.generate("a"), Signer.generate("b")
    good = sign_note("hello\n", [a])
    forged_b = sign_note("other\n", [b]).split("\n\n")[1]  # b's signature over other text
    note = good + forged_b
    assert open_note(note, [a.verifier()]).verified == ["a"]  # b unknown: ignored
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note, [a.verifier(), b.verifier()])


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_tampering_any_text_char_fails(data: st.DataObject) -> None:
    text = "example.com/log\n42\n" + b64(bytes(range(32))) + "\n"
    note = sign_note(text, [LOG])
    i = data.draw(st.integers(0, len(text) - 2))  # keep the final newline
    ch = data.draw(st.sampled_from("aZ0/+= \u00e9\u2014"))
    if note[i] == ch:
        ch = "q" if ch != "q" else "r"
    tampered = note[:i] + ch + note[i + 1 :]
    with pytest.raises(NoteError):
        open_note(tampered, [LOG.verifier()])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 67), st.integers(1, 255))
def test_tampering_any_signature_byte_fails(pos: int, flip: int) -> None:
    note = sign_note("hello\n", [LOG])
    text, line = note.split("\n\n")
    name, sig = line[2:-1].split(" ")
    blob = bytearray(base64.b64decode(sig))
    blob[pos] ^= flip
    tampered = f"{text}\n\n\u2014 {name} {b64(bytes(blob))}\n"
    with pytest.raises(NoteError):  # key id flip: unknown signer; signature flip: bad signature
        open_note(tampered, [LOG.verifier()])


def test_duplicate_lines_are_ignored() -> None:
    note = sign_note("x\n", [LOG])
    line = note.split("\n\n")[1]
    doubled = note + line
    opened = open_note(doubled, [LOG.verifier()])
    assert opened.verified == [ORIGIN] and len(opened.signatures) == 2


@pytest.mark.parametrize("n", [16, 100])
def test_many_signatures_accepted(n: int) -> None:
    signers = [Signer.generate(f"s{i}") for i in range(n)]
    note = sign_note("x\n", signers)
    assert len(open_note(note, [s.verifier() for s in signers]).verified) == n


def test_more_than_100_signature_lines_rejected() -> None:
    note = sign_note("x\n", [LOG])
    line = note.split("\n\n")[1]
    with pytest.raises(NoteError):
        open_note(note + line * 100, [LOG.verifier()])


GOOD = sign_note("hello\n", [LOG])
GOOD_TEXT, GOOD_LINE = GOOD.split("\n\n")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hello\n",
        "hello\n\n",
        GOOD.rstrip("\n"),
        GOOD_TEXT + "\n" + GOOD_LINE,  # no blank line
        GOOD.replace("\u2014", "-"),
        GOOD.replace("\u2014", "\u2013"),  # EN DASH
        GOOD.replace("\u2014 ", "\u2014"),
        GOOD.replace(f" {ORIGIN} ", f" {ORIGIN}  "),
        GOOD_TEXT + "\n\n\u2014 " + ORIGIN + "\n",  # no signature
        GOOD_TEXT + "\n\n\u2014 " + ORIGIN + " \n",  # empty signature
        GOOD_TEXT + "\n\n\u2014 " + ORIGIN + " AAAA\n",  # too short for a key id
        GOOD_TEXT + "\n\n\u2014 " + ORIGIN + " !!!!\n",  # not base64
        GOOD_TEXT + "\n\n\u2014 a+b AAAAAAAA\n",  # '+' in name
        GOOD_TEXT + "\n\n\u2014  AAAAAAAA\n",  # empty name
        "hel\x00lo\n\n" + GOOD_LINE,  # control character
        "hel\rlo\n\n" + GOOD_LINE,
        "hel\ud800lo\n\n" + GOOD_LINE,  # lone surrogate
        GOOD + "\n",  # blank line after the signatures moves the split
        GOOD + "garbage\n",
        b"hello\n\n\xff\n",
        None,
    ],
)
def test_malformed_notes(bad: object) -> None:
    with pytest.raises(NoteError):
        open_note(bad, [LOG.verifier()])  # type: ignore[arg-type]


def test_sign_note_rejects_bad_input() -> None:
    with pytest.raises(NoteError):
        sign_note("no newline", [LOG])
    with pytest.raises(NoteError):
        sign_note("tab\there\n", [LOG])
    with pytest.raises(NoteError):
        sign_note("x\n", [])
    with pytest.raises(NoteError):
        sign_note("x\n", [LOG, LOG])
    with pytest.raises(KeyFormatError):
        sign_note("x\n", [W1])  # a cosignature key never makes plain note signatures


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_body_exact_and_round_trip() -> None:
    root = hashlib.sha256(b"root").digest()
    cp = Checkpoint(ORIGIN, 1234, root)
    assert cp.body() == f"{ORIGIN}\n1234\n{b64(root)}\n"
    assert Checkpoint.parse(cp.body()) == cp
    ext = Checkpoint(ORIGIN, 0, root, ("ext one", "\u00e9xt"))
    assert ext.body().endswith(f"{b64(root)}\next one\n\u00e9xt\n")
    assert Checkpoint.parse(ext.body()).extensions == ("ext one", "\u00e9xt")
    assert Checkpoint.parse(ext.body().encode()) == ext


origins = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
).filter(lambda s: "\n" not in s)


@settings(max_examples=150, deadline=None)
@given(
    origins,
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(origins, max_size=3),
)
def test_checkpoint_round_trip_property(origin: str, size: int, root: bytes, ext: list) -> None:
    cp = Checkpoint(origin, size, root, tuple(ext))
    assert Checkpoint.parse(cp.body()) == cp
    note = sign_note(cp.body(), [LOG])
    assert Checkpoint.parse(open_note(note, [LOG.verifier()]).text) == cp


ROOT = b64(b"\x22" * 32)


@pytest.mark.parametrize(
    "bad",
    [
        f"{ORIGIN}\n007\n{ROOT}\n",  # leading zeros
        f"{ORIGIN}\n00\n{ROOT}\n",
        f"{ORIGIN}\n+7\n{ROOT}\n",
        f"{ORIGIN}\n-1\n{ROOT}\n",
        f"{ORIGIN}\n 7\n{ROOT}\n",
        f"{ORIGIN}\n7 \n{ROOT}\n",
        f"{ORIGIN}\n\u0667\n{ROOT}\n",  # Arabic-Indic digit seven
        f"{ORIGIN}\n1_000\n{ROOT}\n",
        f"{ORIGIN}\n18446744073709551616\n{ROOT}\n",  # 2^64
        f"{ORIGIN}\n\n{ROOT}\n",
        f"{ORIGIN}\n7\n{b64(bytes(31))}\n",  # short root
        f"{ORIGIN}\n7\n{b64(bytes(33))}\n",  # long root
        f"{ORIGIN}\n7\n{ROOT[:-1]}\n",  # bad padding
        f"{ORIGIN}\n7\n{ROOT[:-2]}j=\n",  # noncanonical trailing bits
        f"{ORIGIN}\n7\n!{ROOT[1:]}\n",
        f"{ORIGIN}\n7\n{ROOT}",  # no final newline
        f"{ORIGIN}\n7\n",  # no root
        f"\n7\n{ROOT}\n",  # empty origin
        f"{ORIGIN}\n7\n{ROOT}\n\nx\n",  # empty extension line
        sign_note(f"{ORIGIN}\n7\n{ROOT}\n", [LOG]),  # a signed note, not a body
        f"{ORIGIN}\x01\n7\n{ROOT}\n",
        "",
        None,
    ],
)
def test_checkpoint_parse_rejects(bad: object) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(bad)  # type: ignore[arg-type]


def test_checkpoint_constructor_validates() -> None:
    for args in [
        ("", 1, bytes(32)),
        ("a\nb", 1, bytes(32)),
        (ORIGIN, -1, bytes(32)),
        (ORIGIN, 2**64, bytes(32)),
        (ORIGIN, True, bytes(32)),
        (ORIGIN, 1, bytes(31)),
    ]:
        with pytest.raises(NoteError):
            Checkpoint(*args)  # type: ignore[arg-type]
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, 1, bytes(32), ("",))


# ---------------------------------------------------------------- cosignatures


def test_cosignature_format_matches_spec_independently() -> None:
    body = checkpoint().body()
    line = cosign(body, W1, 1679315147)
    assert line.startswith(f"\u2014 {W1.name} ") and line.endswith("\n")
    blob = base64.b64decode(line.rstrip("\n").split(" ")[2], validate=True)
    assert len(blob) == 4 + 8 + 64
    assert blob[:4] == hashlib.sha256(W1.name.encode() + b"\n\x04" + W1.public).digest()[:4]
    assert int.from_bytes(blob[4:12], "big") == 1679315147
    msg = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    Ed25519PublicKey.from_public_bytes(W1.public).verify(blob[12:], msg)  # independent check
    assert verify_cosignature(body, W1.name, blob, W1.verifier()) == 1679315147


def test_cosignature_rejections() -> None:
    body = checkpoint().body()
    line = cosign(body, W1, 1700000000)
    blob = base64.b64decode(line.rstrip("\n").split(" ")[2])
    v = W1.verifier()
    other = checkpoint(size=11).body()
    assert verify_cosignature(other, W1.name, blob, v) is None  # different checkpoint
    assert verify_cosignature(body, W2.name, blob, v) is None  # wrong line name
    assert verify_cosignature(body, W1.name, blob, W2.verifier()) is None  # wrong key
    ts_tampered = blob[:4] + (1700000001).to_bytes(8, "big") + blob[12:]
    assert verify_cosignature(body, W1.name, ts_tampered, v) is None
    assert verify_cosignature(body, W1.name, blob[:-1], v) is None
    assert verify_cosignature(body, W1.name, b"", v) is None
    assert verify_cosignature("not a checkpoint\n", W1.name, blob, v) is None
    ext = Checkpoint(ORIGIN, 10, b"\x11" * 32, ("extension",)).body()
    assert verify_cosignature(ext, W1.name, blob, v) is None  # extension lines are signed too
    # A type-0x01 verifier of the same key never accepts a cosignature (different key id).
    same_key_note = Signer("osiris/appliance/a1", b"\x07" * 32)
    same_key_cosig = Signer("osiris/appliance/a1", b"\x07" * 32, key_type=0x04)
    c = base64.b64decode(cosign(body, same_key_cosig, 5).rstrip("\n").split(" ")[2])
    assert verify_cosignature(body, same_key_note.name, c, same_key_note.verifier()) is None


def test_cosign_input_checks() -> None:
    body = checkpoint().body()
    with pytest.raises(KeyFormatError):
        cosign(body, LOG, 1)  # type 0x01 key
    for ts in (-1, 2**63, 1.5, True):
        with pytest.raises(NoteError):
            cosign(body, W1, ts)  # type: ignore[arg-type]
    with pytest.raises(NoteError):
        cosign("just some text\n", W1, 1)
    assert cosign(body, W1, 0) and cosign(body, W1, 2**63 - 1)


def test_checkpoint_with_log_signature_and_cosignatures() -> None:
    body = checkpoint(size=99).body()
    note = sign_note(body, [LOG])
    note = add_signature_lines(note, [cosign(body, W1, 1000), cosign(body, W2, 2000).rstrip("\n")])
    opened = open_note(note, [LOG.verifier(), W1.verifier(), W2.verifier()])
    assert opened.verified == [ORIGIN, W1.name, W2.name]
    assert opened.timestamps == {W1.name: 1000, W2.name: 2000}
    assert Checkpoint.parse(opened.text).size == 99
    # A third-party witness line is unknown to us and ignored.
    stranger = Signer.generate("witness.example.org", key_type=0x04)
    note2 = add_signature_lines(note, [cosign(body, stranger, 3)])
    assert open_note(note2, [LOG.verifier(), W1.verifier()]).verified == [ORIGIN, W1.name]
    # Only the cosigner is known: its cosignature alone verifies the note (policy is the caller's).
    assert open_note(note, [W2.verifier()]).verified == [W2.name]


def test_cosignature_moved_to_another_checkpoint_fails() -> None:
    body_a, body_b = checkpoint(size=5).body(), checkpoint(size=6).body()
    note_b = add_signature_lines(sign_note(body_b, [LOG]), [cosign(body_a, W1, 7)])
    assert open_note(note_b, [LOG.verifier()]).verified == [ORIGIN]
    with pytest.raises(NoteError):
        open_note(note_b, [LOG.verifier(), W1.verifier()])


def test_add_signature_lines() -> None:
    body = checkpoint().body()
    note = sign_note(body, [LOG])
    line = cosign(body, W1, 1)
    once = add_signature_lines(note, [line])
    assert add_signature_lines(once, [line, line]) == once  # duplicates skipped
    assert once == note + line
    for bad in ["not a signature", "\u2014 a AAAAAAAA\n\u2014 b AAAAAAAA", "\u2014 x !!"]:
        with pytest.raises(NoteError):
            add_signature_lines(note, [bad])
    with pytest.raises(NoteError):
        add_signature_lines(body, [line])  # not a signed note


# ---------------------------------------------------------------- tlog-proof


def _signed_checkpoint() -> str:
    body = checkpoint(size=8, root=hashlib.sha256(b"r").digest()).body()
    return add_signature_lines(sign_note(body, [LOG]), [cosign(body, W1, 42)])


def test_proof_format_exact_and_round_trip() -> None:
    cp = _signed_checkpoint()
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    proof = TlogProof(index=5, hashes=hashes, checkpoint=cp, extra=b"ctx")
    text = proof.format()
    expected = (
        "c2sp.org/tlog-proof@v1\n"
        f"extra {b64(b'ctx')}\n"
        "index 5\n" + "".join(b64(h) + "\n" for h in hashes) + "\n" + cp
    )
    assert text == expected
    assert TlogProof.parse(text) == proof
    bare = TlogProof(index=0, hashes=[], checkpoint=cp)
    assert bare.format() == "c2sp.org/tlog-proof@v1\nindex 0\n\n" + cp
    assert TlogProof.parse(bare.format()) == bare
    # The embedded checkpoint still opens with all its signatures.
    opened = open_note(TlogProof.parse(text).checkpoint, [LOG.verifier(), W1.verifier()])
    assert opened.timestamps == {W1.name: 42}


def test_proof_with_tampered_checkpoint_does_not_open() -> None:
    text = TlogProof(index=1, hashes=[bytes(32)], checkpoint=_signed_checkpoint()).format()
    tampered = text.replace("\n8\n", "\n9\n")
    proof = TlogProof.parse(tampered)  # still well-formed…
    with pytest.raises(NoteError):
        open_note(proof.checkpoint, [LOG.verifier()])  # …but the signature fails


CP = _signed_checkpoint()
H = b64(bytes(32))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        f"c2sp.org/tlog-proof@v2\nindex 0\n\n{CP}",
        f"C2SP.org/tlog-proof@v1\nindex 0\n\n{CP}",
        f"c2sp.org/tlog-proof@v1\n\n{CP}",  # no index
        f"c2sp.org/tlog-proof@v1\nindex 01\n\n{CP}",
        f"c2sp.org/tlog-proof@v1\nindex -1\n\n{CP}",
        f"c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\n{CP}",
        f"c2sp.org/tlog-proof@v1\nindex  1\n\n{CP}",
        f"c2sp.org/tlog-proof@v1\nindex 1\n{b64(bytes(31))}\n\n{CP}",
        f"c2sp.org/tlog-proof@v1\nindex 1\n{H[:-1]}\n\n{CP}",
        f"c2sp.org/tlog-proof@v1\nindex 1\n{H}\n{CP}",  # no blank line before checkpoint
        f"c2sp.org/tlog-proof@v1\nindex 1\nextra {H}\n\n{CP}",  # extra after index
        f"c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\n{CP}",
        "c2sp.org/tlog-proof@v1\nindex 1\n" + f"{H}\n" * 65 + f"\n{CP}",
        "c2sp.org/tlog-proof@v1\nindex 1\n\n",  # no checkpoint
        f"c2sp.org/tlog-proof@v1\nindex 1\n\n{checkpoint().body()}",  # unsigned body
        "c2sp.org/tlog-proof@v1\nindex 1\n\n" + sign_note("not a checkpoint\n", [LOG]),
        f"c2sp.org/tlog-proof@v1\nindex 1\n\n{CP}\n",
        f"c2sp.org/tlog-proof@v1\r\nindex 1\n\n{CP}",
        None,
    ],
)
def test_proof_parse_rejects(bad: object) -> None:
    with pytest.raises(NoteError):
        TlogProof.parse(bad)  # type: ignore[arg-type]


def test_proof_format_validates() -> None:
    cp = _signed_checkpoint()
    for proof in [
        TlogProof(-1, [], cp),
        TlogProof(0, [bytes(31)], cp),
        TlogProof(0, [], checkpoint().body()),
        TlogProof(0, [], cp, extra="text"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(NoteError):
            proof.format()


# ---------------------------------------------------------------- fuzzing: only NoteError escapes

NOTE_ALPHABET = st.sampled_from(list("\n \u2014+=/aA0189-") + ["\u00e9", "\x00", "\ud800"])


def _only_note_errors(fn, arg) -> None:
    try:
        fn(arg)
    except NoteError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=NOTE_ALPHABET, max_size=120))
def test_fuzz_random_text(text: str) -> None:
    _only_note_errors(lambda t: open_note(t, [LOG.verifier(), W1.verifier()]), text)
    _only_note_errors(Checkpoint.parse, text)
    _only_note_errors(TlogProof.parse, text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_valid_documents(data: st.DataObject) -> None:
    proof = TlogProof(index=3, hashes=[bytes(32), b"\x01" * 32], checkpoint=CP, extra=b"x").format()
    doc = data.draw(st.sampled_from([CP, proof, CP.split("\n\n")[0] + "\n"]))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(doc)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        ch = data.draw(NOTE_ALPHABET)
        if op == "insert":
            doc = doc[:i] + ch + doc[i:]
        elif op == "delete":
            doc = doc[:i] + doc[i + 1 :]
        else:
            doc = doc[:i] + ch + doc[i + 1 :]
    _only_note_errors(lambda t: open_note(t, [LOG.verifier(), W1.verifier()]), doc)
    _only_note_errors(Checkpoint.parse, doc)
    _only_note_errors(TlogProof.parse, doc)
    _only_note_errors(lambda t: add_signature_lines(t, [cosign(checkpoint().body(), W2, 1)]), doc)
