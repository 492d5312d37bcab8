"""C2SP signed notes, tlog checkpoints, Ed25519 cosignatures and tlog-proof files.

These are the exact text formats of c2sp.org/signed-note, tlog-checkpoint, tlog-cosignature
(v1, key type 0x04) and tlog-proof@v1, so any tool of that ecosystem (Go ``sumdb/note``,
litewitness, sigsum) checks our checkpoints and receipts, and we check theirs.

A note is ``<text ending in \\n>`` + ``\\n`` + one line per signature::

    — <key name> <base64(key id[4] || signature)>

Parsing is strict and fail-closed: every malformed input raises ``NoteError`` (never another
exception), a known key whose signature does not verify rejects the whole note (as Go does), and
lines from unknown keys are ignored so that third-party witnesses can add cosignatures freely.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from osiris_core.errors import KeyFormatError, NoteError
from osiris_core.keys import KEY_TYPE_COSIGNATURE, KEY_TYPE_ED25519, Signer, Verifier, validate_name

SIG_PREFIX = "\u2014 "  # EM DASH + space: E2 80 94 20
MAX_SIGNATURES = 100  # Go's cap: bounds the work a hostile note can cause
MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: the timestamp MUST NOT exceed 2^63-1
MAX_SIZE = 2**64 - 1
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64  # a tree of at most 2^64 leaves has paths of at most 64 hashes

# Notes are UTF-8 with no control characters but newline; surrogates are not Unicode.
_BAD_CHARS = re.compile("[\x00-\x09\x0b-\x1f\ud800-\udfff]")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _as_text(data: str | bytes, what: str) -> str:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError(f"{what} is not valid UTF-8") from None
    if not isinstance(data, str):
        raise NoteError(f"{what} must be text, not {type(data).__name__}")
    if _BAD_CHARS.search(data):
        raise NoteError(f"{what} contains a control character or invalid Unicode")
    return data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(s: str, what: str) -> bytes:
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"{what} is not valid base64") from None


def _decimal(s: str, what: str, limit: int) -> int:
    """ASCII decimal without leading zeros (``0`` itself allowed), at most ``limit``."""
    if not _DECIMAL.fullmatch(s):
        raise NoteError(f"{what} {s[:40]!r} is not a decimal without leading zeros")
    if len(s) > 20 or int(s) > limit:
        raise NoteError(f"{what} {s[:40]!r} is too large")
    return int(s)


def _split_note(note: str) -> tuple[str, list[str]]:
    """Split a note into its text (ending in \\n) and its signature lines (without \\n)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise NoteError("note has no signature lines, or they do not end in a newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signature lines")
    return text, lines


def _parse_sig_line(line: str) -> tuple[str, bytes, bytes]:
    """``— <name> <base64>`` → (name, key id, signature bytes after the key id)."""
    if not line.startswith(SIG_PREFIX):
        raise NoteError(f"signature line does not start with '— ': {line[:60]!r}")
    name, sep, b64 = line[len(SIG_PREFIX) :].partition(" ")
    if not sep or not b64:
        raise NoteError(f"signature line has no signature: {line[:60]!r}")
    try:
        validate_name(name)
    except KeyFormatError as e:
        raise NoteError(f"signature line has a bad key name: {e}") from None
    blob = _unb64(b64, "signature")
    if len(blob) < 5:
        raise NoteError("signature is too short to hold a key id")
    return name, blob[:4], blob[4:]


def _cosignature_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def _check_cosig(body: str, sig: bytes, verifier: Verifier) -> int | None:
    """Timestamp of a valid v1 cosignature ``u64be(ts) || sig64`` by ``verifier``, else None."""
    if verifier.key_type != KEY_TYPE_COSIGNATURE or len(sig) != 72:
        return None
    ts = int.from_bytes(sig[:8], "big")
    if ts > MAX_TIMESTAMP:
        return None
    if verifier.verify(_cosignature_message(body, ts), sig[8:]):
        return ts
    return None


# ---------------------------------------------------------------- signed notes


@dataclass
class OpenedNote:
    """A note whose signatures were checked: ``verified`` names the keys that verified it."""

    text: str
    verified: list[str]
    signatures: list[tuple[str, bytes, bytes]]
    # Cosigner name → cosignature time (type 0x04 keys): the trusted "existed by" time.
    timestamps: dict[str, int] = field(default_factory=dict)


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` (which must end in \\n) with each signer (type 0x01 keys)."""
    text = _as_text(text, "note text")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if not signers:
        raise NoteError("a note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    msg = text.encode("utf-8")
    seen: set[tuple[str, bytes]] = set()
    lines = []
    for s in signers:
        if s.key_type != KEY_TYPE_ED25519:
            raise KeyFormatError(
                f"key {s.name} has type 0x{s.key_type:02x}; notes are signed with type 0x01 keys"
                " (use cosign() for cosignatures)"
            )
        if (s.name, s.key_id) in seen:
            raise NoteError(f"duplicate signer {s.name}+{s.key_id_hex}")
        seen.add((s.name, s.key_id))
        lines.append(f"{SIG_PREFIX}{s.name} {_b64(s.key_id + s.sign(msg))}\n")
    return text + "\n" + "".join(lines)


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse and verify a note against known keys.

    Type 0x01 verifiers check plain note signatures; type 0x04 verifiers check tlog
    cosignatures over the note text. Unknown (name, key id) lines are ignored; a known key
    with a bad signature, or no verified known key at all, raises ``NoteError``. Which keys
    must be among ``verified`` (log key, cosigner quorum) is the caller's policy.
    """
    note = _as_text(note, "note")
    text, lines = _split_note(note)
    known: dict[tuple[str, bytes], list[Verifier]] = {}
    for v in verifiers:
        known.setdefault((v.name, v.key_id), []).append(v)
    msg = text.encode("utf-8")
    signatures: list[tuple[str, bytes, bytes]] = []
    verified: list[str] = []
    timestamps: dict[str, int] = {}
    checked: set[tuple[str, bytes]] = set()
    for line in lines:
        name, kid, sig = _parse_sig_line(line)
        signatures.append((name, kid, sig))
        candidates = known.get((name, kid))
        if not candidates or (name, kid) in checked:
            continue  # unknown signer, or a repeated line by one we already checked
        checked.add((name, kid))
        ok = False
        for v in candidates:
            if v.key_type == KEY_TYPE_COSIGNATURE:
                ts = _check_cosig(text, sig, v)
                if ts is not None:
                    timestamps[name] = ts
                    ok = True
                    break
            elif v.verify(msg, sig):
                ok = True
                break
        if not ok:
            raise NoteError(f"signature by known key {name}+{kid.hex()} does not verify")
        if name not in verified:
            verified.append(name)
    if not verified:
        raise NoteError("note carries no valid signature by a known key")
    return OpenedNote(text=text, verified=verified, signatures=signatures, timestamps=timestamps)


def add_signature_lines(note: str, lines: Iterable[str]) -> str:
    """Append signature lines (e.g. cosignatures) to a signed note, skipping exact duplicates."""
    note = _as_text(note, "note")
    _, existing = _split_note(note)
    have = set(existing)
    out = note
    for line in lines:
        line = _as_text(line, "signature line")
        if line.endswith("\n"):
            line = line[:-1]
        if "\n" in line:
            raise NoteError("a signature line must be a single line")
        _parse_sig_line(line)
        if line in have:
            continue
        have.add(line)
        out += line + "\n"
    if len(have) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return out


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A tlog checkpoint body: origin, tree size, root hash, and untrusted extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be a non-empty single line")
        _as_text(self.origin, "checkpoint origin")
        if type(self.size) is not int or not 0 <= self.size <= MAX_SIZE:
            raise NoteError("checkpoint size must be an integer in [0, 2^64)")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise NoteError("checkpoint root must be 32 bytes")
        ext = tuple(self.extensions)
        for line in ext:
            if not isinstance(line, str) or not line or "\n" in line:
                raise NoteError("checkpoint extension lines must be non-empty single lines")
            _as_text(line, "checkpoint extension line")
        object.__setattr__(self, "extensions", ext)

    def body(self) -> str:
        """The note text: ``origin\\nsize\\nbase64(root)\\n`` then any extension lines."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint *body* (a note's ``.text``, not the signed note itself)."""
        text = _as_text(text, "checkpoint")
        if not text.endswith("\n"):
            raise NoteError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs origin, size and root lines")
        if "" in lines:
            raise NoteError(
                "checkpoint has an empty line (a signed note? open it with open_note and parse "
                "its .text)"
            )
        origin, size_s, root_s, *ext = lines
        size = _decimal(size_s, "checkpoint size", MAX_SIZE)
        root = _unb64(root_s, "checkpoint root")
        if len(root) != 32:
            raise NoteError(f"checkpoint root must be 32 bytes, got {len(root)}")
        if _b64(root) != root_s:
            raise NoteError("checkpoint root is not canonical base64")
        return cls(origin=origin, size=size, root=root, extensions=tuple(ext))


# ---------------------------------------------------------------- cosignatures


def cosign(checkpoint_text: str, signer: Signer, timestamp: int) -> str:
    """One tlog-cosignature/v1 line ``— <name> <base64(keyid || u64be(ts) || sig)>\\n``.

    ``checkpoint_text`` is the checkpoint body; it must parse as a checkpoint so a cosigner
    never signs anything else.
    """
    if signer.key_type != KEY_TYPE_COSIGNATURE:
        raise KeyFormatError(f"key {signer.name} is not a cosignature key (type 0x04)")
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp must be an integer in [0, 2^63)")
    Checkpoint.parse(checkpoint_text)
    sig = signer.sign(_cosignature_message(checkpoint_text, timestamp))
    blob = signer.key_id + timestamp.to_bytes(8, "big") + sig
    return f"{SIG_PREFIX}{signer.name} {_b64(blob)}\n"


def verify_cosignature(
    checkpoint_text: str, line_name: str, blob: bytes, verifier: Verifier
) -> int | None:
    """The cosignature's timestamp if ``blob`` (keyid ‖ u64be ts ‖ sig) is valid, else None.

    ``blob`` is the decoded base64 of a signature line named ``line_name``. Never raises.
    """
    if not isinstance(checkpoint_text, str) or not isinstance(blob, bytes | bytearray):
        return None
    if line_name != verifier.name or bytes(blob[:4]) != verifier.key_id:
        return None
    try:
        Checkpoint.parse(checkpoint_text)
    except NoteError:
        return None
    return _check_cosig(checkpoint_text, bytes(blob[4:]), verifier)


# ---------------------------------------------------------------- tlog-proof


@dataclass
class TlogProof:
    """A c2sp.org/tlog-proof@v1 file: index, inclusion path and the signed checkpoint note.

    ``extra`` is unauthenticated; never trust it.
    """

    index: int
    hashes: list[bytes]
    checkpoint: str
    extra: bytes | None = None

    def _validate(self) -> None:
        if type(self.index) is not int or not 0 <= self.index <= MAX_SIZE:
            raise NoteError("proof index must be an integer in [0, 2^64)")
        if len(self.hashes) > MAX_PROOF_HASHES:
            raise NoteError(f"proof has more than {MAX_PROOF_HASHES} hashes")
        for h in self.hashes:
            if not isinstance(h, bytes) or len(h) != 32:
                raise NoteError("every proof hash must be 32 bytes")
        if self.extra is not None and not isinstance(self.extra, bytes):
            raise NoteError("proof extra must be bytes or None")
        cp = _as_text(self.checkpoint, "proof checkpoint")
        text, _ = _split_note(cp)
        Checkpoint.parse(text)

    def format(self) -> str:
        """The proof file text (``.tlog-proof``)."""
        self._validate()
        out = [PROOF_HEADER + "\n"]
        if self.extra is not None:
            out.append(f"extra {_b64(self.extra)}\n")
        out.append(f"index {self.index}\n")
        out.extend(_b64(h) + "\n" for h in self.hashes)
        out.append("\n")
        out.append(self.checkpoint)
        return "".join(out)

    @classmethod
    def parse(cls, text: str | bytes) -> TlogProof:
        """Parse a proof file; the embedded checkpoint note is kept verbatim (not verified)."""
        text = _as_text(text, "proof")
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise NoteError("proof has no blank line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise NoteError(f"proof does not start with {PROOF_HEADER}")
        i = 1
        extra = None
        if i < len(lines) and lines[i].startswith("extra "):
            extra = _unb64(lines[i][len("extra ") :], "proof extra")
            i += 1
        if i >= len(lines) or not lines[i].startswith("index "):
            raise NoteError("proof has no index line")
        index = _decimal(lines[i][len("index ") :], "proof index", MAX_SIZE)
        hashes = []
        for line in lines[i + 1 :]:
            h = _unb64(line, "proof hash")
            if len(h) != 32:
                raise NoteError(f"proof hash must be 32 bytes, got {len(h)}")
            hashes.append(h)
        proof = cls(index=index, hashes=hashes, checkpoint=checkpoint, extra=extra)
        proof._validate()
        return proof
