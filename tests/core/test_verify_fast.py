"""The verifier's fast path refuses everything the ordered checks refuse (issue 14 item 7).

verify_fast.py answers "passes every per-bundle check" or hands the line to the ordered checks;
inclusion_cache.py proves many leaves with shared tree nodes; spec_predicate.py compiles the
evidence specs. Each tampering below is verified twice — with the fast path and with
``fast_path=False`` (the ordered checks alone) — and the two reports must be identical, besides
failing with the expected code. The tampered line sits mid-export, after its neighbours have
filled the proven-node memory, which is where a shared-node shortcut could go wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest

from osiris_core import canonical, tlog
from osiris_core.evidence import BUNDLE, ENVELOPE, bundle_hash, envelope_bytes, sign_bundle
from osiris_core.inclusion_cache import ProvenTree, split_proof
from osiris_core.keys import Signer
from osiris_core.note import Checkpoint, TlogProof
from osiris_core.schema import F, validate
from osiris_core.spec_predicate import compile_record
from osiris_core.synth import make_export
from osiris_core.trust import TrustRoots, load_trust_item
from osiris_core.verify import verify_export

N, APPS, MID = 90, 3, 46  # MID: a line in the middle (app-001, seq 16)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    ex = make_export(N, APPS)
    out = tmp_path_factory.mktemp("fast") / "export"
    ex.write(out)
    roots = TrustRoots()
    load_trust_item(ex.pins(), "pinned keys", roots)
    return out, ex, roots


@pytest.fixture
def export(made, tmp_path) -> Path:
    dst = tmp_path / "export"
    shutil.copytree(made[0], dst)
    return dst


def lines(folder: Path) -> list[bytes]:
    return (folder / "bundles.jsonl").read_bytes().splitlines()


def write_lines(folder: Path, ls: list[bytes]) -> None:
    (folder / "bundles.jsonl").write_bytes(b"".join(x + b"\n" for x in ls))


def proof_path(folder: Path, line: bytes) -> Path:
    h = bundle_hash(canonical.loads(line)["bundle"]).removeprefix("sha256:")
    return folder / "proofs" / f"{h}.tlog-proof"


def both(folder: Path, roots: TrustRoots, workers: int = 1):
    """The report with the fast path, after checking it equals the ordered checks' report."""
    fast = verify_export(folder, trust=roots, workers=workers)
    ordered = verify_export(folder, trust=roots, workers=1, fast_path=False)
    assert fast.as_dict(strict=True) == ordered.as_dict(strict=True)
    assert fast.lines() == ordered.lines()
    assert fast.chains == ordered.chains
    return fast


def codes(report) -> set[str]:
    return {f.code for f in report.failures}


def test_good_export_passes_the_same_way(made) -> None:
    folder, _, roots = made
    report = both(folder, roots)
    assert report.ok(strict=True), report.lines()
    assert report.passed["E_INCLUSION"] == N and report.passed["E_SIG"] == N


def test_the_fast_path_takes_every_good_line(made) -> None:
    """Else the tests above would only exercise the ordered checks."""
    from osiris_core import verify as v
    from osiris_core.verify_fast import FastPath

    folder, _, roots = made
    keys = v._load_keys(folder, roots)
    checker = v._Checker(keys, folder / "proofs", None, v.DEFAULT_SKEW_S)
    checker.top = v._top_checkpoint(folder, checker, v._Aggregator(keys, {}))
    fast = FastPath(
        keys.epochs, folder / "proofs", checker.open_checkpoint, checker.top, v.DEFAULT_SKEW_S
    )
    assert all(fast.check(line) is not None for line in lines(folder))
    assert fast.take().full == N


def test_forged_signature(export: Path, made) -> None:
    _, ex, roots = made
    ls = lines(export)
    env = canonical.loads(ls[MID])
    rogue = Signer.generate("osiris/appliance/" + env["bundle"]["appliance_id"])
    ls[MID] = envelope_bytes(sign_bundle(env["bundle"], rogue))
    write_lines(export, ls)
    assert "E_KEY_UNTRUSTED" in codes(both(export, roots))
    assert "E_SIG" in codes(both(export, None))  # unpinned: the export's keys


def test_wrong_signature_bytes_by_the_real_key_id(export: Path, made) -> None:
    _, _, roots = made
    ls = lines(export)
    env = canonical.loads(ls[MID])
    raw = bytearray(base64.b64decode(env["sig"]["value"]))
    raw[5] ^= 1
    env["sig"]["value"] = base64.b64encode(bytes(raw)).decode()
    ls[MID] = canonical.dumps(env)
    write_lines(export, ls)
    report = both(export, roots)
    assert [f.subject for f in report.failures if f.code == "E_SIG"] == ["app-001#16"]


def test_broken_chain_signed_by_the_real_key(export: Path, made) -> None:
    _, ex, roots = made
    ls = lines(export)
    env = canonical.loads(ls[MID])
    env["bundle"]["prev_hash"] = "sha256:" + "ab" * 32
    ls[MID] = envelope_bytes(sign_bundle(env["bundle"], ex.appliances["app-001"][0]))
    write_lines(export, ls)
    report = both(export, roots)
    assert "E_CHAIN" in codes(report) and "E_SIG" not in codes(report)


def test_swapped_bundles_of_one_appliance(export: Path, made) -> None:
    _, _, roots = made
    ls = lines(export)
    ls[MID], ls[MID + APPS] = ls[MID + APPS], ls[MID]
    write_lines(export, ls)
    assert "E_CHAIN" in codes(both(export, roots))


def test_leaf_not_in_the_log(export: Path, made) -> None:
    """A correctly signed bundle the log never held, with a neighbour's (valid) proof."""
    _, ex, roots = made
    ls = lines(export)
    last = canonical.loads(ls[-1])["bundle"]
    app = last["appliance_id"]
    from osiris_core.evidence import Chain

    chain = Chain(app, last["seq"], bundle_hash(last))
    fields = {k: v for k, v in last.items() if k not in ("seq", "prev_hash", "bundle_id")}
    new = sign_bundle(chain.next(**fields), ex.appliances[app][0])
    line = envelope_bytes(new)
    shutil.copy(proof_path(export, ls[-1]), proof_path(export, line))
    write_lines(export, [*ls, line])
    report = both(export, roots)
    assert [f.code for f in report.failures] == ["E_INCLUSION"]


def test_proof_of_another_tree(export: Path, made) -> None:
    _, ex, roots = made
    other = make_export(N, APPS, log_signer=ex.log.signer)  # same log key, other entries
    env = canonical.loads(lines(export)[MID])
    proof_path(export, lines(export)[MID]).write_text(
        other.proofs[bundle_hash(other.envelopes[MID]["bundle"])]
    )
    assert bundle_hash(env["bundle"])  # the bundle itself is untouched
    assert codes(both(export, roots)) == {"E_INCLUSION"}


def test_leaf_at_the_wrong_index(export: Path, made) -> None:
    _, _, roots = made
    ls = lines(export)
    path = proof_path(export, ls[MID])
    path.write_text(path.read_text().replace(f"index {MID}\n", f"index {MID - 1}\n"))
    report = both(export, roots)
    assert [f.subject for f in report.failures] == ["app-001#16"]
    assert codes(report) == {"E_INCLUSION"}


def test_neighbours_with_swapped_proofs(export: Path, made) -> None:
    """Each proof is valid — for the other leaf: both leaves are at the wrong index."""
    _, _, roots = made
    ls = lines(export)
    a, b = proof_path(export, ls[MID]), proof_path(export, ls[MID + 1])
    ta, tb = a.read_text(), b.read_text()
    a.write_text(tb)
    b.write_text(ta)
    report = both(export, roots)
    assert len([f for f in report.failures if f.code == "E_INCLUSION"]) == 2


def test_proof_against_a_different_checkpoint(export: Path, made) -> None:
    _, ex, roots = made
    ls = lines(export)
    smaller = ex.log.checkpoint(size=N - 10)  # signed by the real log key
    path = proof_path(export, ls[MID])
    head = path.read_text().split("\n\n", 1)[0]
    path.write_text(head + "\n\n" + smaller)  # the full tree's path, the smaller tree's root
    assert codes(both(export, roots)) == {"E_INCLUSION"}
    # a proof for a larger tree than the exported checkpoint is not part of the exported log
    bigger = make_export(N + 1, APPS, log_signer=ex.log.signer)
    path.write_text(bigger.proofs[bundle_hash(bigger.envelopes[MID]["bundle"])])
    report = both(export, roots)
    assert any("not part of the exported log" in f.message for f in report.failures)


def test_correct_proof_against_an_older_checkpoint_passes_both_ways(export: Path, made) -> None:
    _, ex, roots = made
    ls = lines(export)
    older = ex.log.checkpoint(size=N - 10)
    proof_path(export, ls[MID]).write_text(ex.log.proof(MID, older))
    report = both(export, roots)
    assert not report.failures


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_missing_bundle(export: Path, made, where: str) -> None:
    _, _, roots = made
    ls = lines(export)
    i = {"start": 0, "middle": MID, "end": len(ls) - 1}[where]
    app = canonical.loads(ls[i])["bundle"]["appliance_id"]
    del ls[i]
    write_lines(export, ls)
    report = both(export, roots)
    if where == "start":  # the chain no longer starts at seq 1: a warning, strict fails
        assert [f.code for f in report.warnings] == ["W_CHAIN_START"]
        assert not report.ok(strict=True)
    elif where == "middle":
        assert codes(report) == {"E_GAP"}
    else:  # nothing refutes a shorter chain; the report shows where it stops
        assert report.chains[app]["last_seq"] == N // APPS - 1


@pytest.mark.parametrize(
    "edit",
    ["top hash", "bottom hash", "drop a hash", "add a hash", "bad base64", "second extra"],
)
def test_tampered_proof_lines(export: Path, made, edit: str) -> None:
    _, _, roots = made
    path = proof_path(export, lines(export)[MID])
    head, note = path.read_text().split("\n\n", 1)
    hl = head.split("\n")
    other = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    if edit == "top hash":
        hl[-1] = other
    elif edit == "bottom hash":
        hl[2] = other
    elif edit == "drop a hash":
        hl.pop()
    elif edit == "add a hash":
        hl.append(other)
    elif edit == "bad base64":
        hl[-1] = hl[-1][:-2] + "*="
    else:
        hl.insert(1, "extra a")
        hl.insert(1, "extra b")
    path.write_text("\n".join(hl) + "\n\n" + note)
    assert codes(both(export, roots)) == {"E_INCLUSION"}


def _relaid(line: bytes, fn) -> bytes:
    env = json.loads(line)
    fn(env)
    return json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "bad",
    [
        "bundle keys out of order",
        "state keys out of order",
        "deep state",
        "duplicate key",
        "float",
        "big int",
        "minus zero",
        "non-ascii key",
        "surrogate",
        "escaped letter",
        "space",
    ],
)
def test_non_canonical_or_unparsable_lines(export: Path, made, bad: str) -> None:
    """What the fast path's unsorted re-encoding and its layout predicate must not let by."""
    _, _, roots = made
    ls = lines(export)
    line = ls[MID]
    if bad == "bundle keys out of order":

        def move(env):
            b = env["bundle"]
            env["bundle"] = {"seq": b.pop("seq"), **b}

        line = _relaid(line, move)
    elif bad == "state keys out of order":

        def state(env):
            env["bundle"]["pre_state"] = {"z": 1, "a": 2}

        line = _relaid(line, state)
    elif bad == "deep state":
        deep = "[" * 70 + "]" * 70
        line = line.replace(b'"pre_state":{', b'"pre_state":{"deep":' + deep.encode() + b",", 1)
    elif bad == "duplicate key":
        line = line.replace(b'"seq":', b'"seq":1,"seq":', 1)
    elif bad == "float":
        line = line.replace(b'"offset_ms":3', b'"offset_ms":3.0', 1)
    elif bad == "big int":
        line = line.replace(b'"offset_ms":3', b'"offset_ms":9007199254740993', 1)
    elif bad == "minus zero":
        line = line.replace(b'"offset_ms":3', b'"offset_ms":-0', 1)
    elif bad == "non-ascii key":
        line = line.replace(b'"pre_state":{', '"pre_state":{"é":1,'.encode(), 1)
    elif bad == "surrogate":
        line = line.replace(b'"source":"', b'"source":"\\ud800', 1)
    elif bad == "escaped letter":
        line = line.replace(b'"source":"1', b'"source":"\\u0031', 1)
    else:
        line = line.replace(b'"seq":', b'"seq": ', 1)
    assert line != ls[MID]
    ls[MID] = line
    write_lines(export, ls)
    report = both(export, roots)
    assert codes(report) & {"E_PARSE", "E_NONCANONICAL", "E_SCHEMA"}


def test_schema_and_rule_violations(export: Path, made) -> None:
    _, ex, roots = made
    ls = lines(export)
    signer = ex.appliances["app-001"][0]
    for i, change in enumerate(
        [
            {"outcome": "fine"},  # enum
            {"host_id": "has space"},  # pattern
            {"started_at": "2026-11-01T00:01:00.000Z"},  # after finished_at (bundle rule)
            {"finished_at": "2026-02-30T00:00:00.000Z"},  # not a date (bundle rule)
            {"deployment_mode": "reseller"},  # without a reseller (bundle rule)
        ]
    ):
        env = canonical.loads(ls[MID + APPS * i])
        env["bundle"].update(change)
        sig = signer.sign(canonical.dumps(env["bundle"]))
        env["sig"]["value"] = base64.b64encode(sig).decode()
        ls[MID + APPS * i] = canonical.dumps(env)
    write_lines(export, ls)
    report = both(export, roots)
    assert len([f for f in report.failures if f.code == "E_SCHEMA"]) == 5


def test_time_skew_boundary_is_the_same(tmp_path) -> None:
    """finished_at exactly at, and one second past, the cosigned time + skew."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 11, 1, tzinfo=UTC)
    ex = make_export(6, 1, start=start, cosign_at=start + timedelta(seconds=2))
    folder = ex.write(tmp_path / "export")
    for skew in (0, 1, 2, 3, 4):
        fast = verify_export(folder, workers=1, skew_s=skew)
        ordered = verify_export(folder, workers=1, skew_s=skew, fast_path=False)
        assert fast.as_dict() == ordered.as_dict()
        late = [f.subject for f in fast.failures if f.code == "E_TIME_SKEW"]
        assert late == [f"app-000#{s}" for s in range(skew + 4, 7)]


def test_parallel_chunks_equal_the_ordered_checks(tmp_path) -> None:
    """More lines than one worker chunk, tampered on both sides of a chunk boundary."""
    ex = make_export(2100, 3)
    folder = ex.write(tmp_path / "export")
    ls = lines(folder)
    ls[999], ls[1002] = ls[1002], ls[999]  # one appliance's seqs 334 and 335, across chunks
    del ls[1500]
    proof_path(folder, ls[2000]).unlink()
    write_lines(folder, ls)
    roots = TrustRoots()
    load_trust_item(ex.pins(), "pinned keys", roots)
    report = both(folder, roots, workers=2)
    assert codes(report) == {"E_CHAIN", "E_GAP", "E_INCLUSION"}


def test_proven_tree_equals_full_recomputation() -> None:
    """Every index of trees of sizes 1..40, in random order, with right and wrong proofs."""
    rng = random.Random(14)
    for size in range(1, 41):
        leaves = [tlog.leaf_hash(b"%d" % i) for i in range(size)]
        tree = tlog.MerkleTree(tlog.MemoryStore(leaves))
        root = tree.root()
        proven = ProvenTree(size, root)
        order = list(range(size))
        rng.shuffle(order)
        for i in order:
            path = tree.inclusion_proof(i, size)
            texts = [base64.b64encode(h).decode() for h in path]
            assert tlog.root_from_inclusion(leaves[i], i, size, path) == root
            assert proven.prove(leaves[i], i, texts)
            # wrong leaf, wrong index, each hash wrong, too short, too long: never proven
            assert not proven.prove(leaves[(i + 1) % size], i, texts) or size == 1
            if size > 1:
                assert not proven.prove(leaves[i], (i + 1) % size, texts)
            for k in range(len(texts)):
                bad = list(texts)
                bad[k] = base64.b64encode(hashlib.sha256(bad[k].encode()).digest()).decode()
                assert not proven.prove(leaves[i], i, bad)
            if texts:
                assert not proven.prove(leaves[i], i, texts[:-1])
            assert not proven.prove(leaves[i], i, [*texts, texts[-1] if texts else texts])
            assert not proven.prove(leaves[i], size, texts)
            assert proven.prove(leaves[i], i, texts)  # still proven after the refusals


def test_split_proof_follows_the_proof_grammar(made) -> None:
    _, ex, _ = made
    text = next(iter(ex.proofs.values()))
    index, hashes, note = split_proof(text)
    parsed = TlogProof.parse(text)
    assert index == parsed.index and note == parsed.checkpoint
    assert [base64.b64decode(h) for h in hashes] == parsed.hashes
    head, cp = text.split("\n\n", 1)
    for bad in [
        head.replace("index ", "index 0", 1),  # leading zero
        head.replace("index ", "index -", 1),
        head.replace("c2sp.org", "c2sp.com", 1),
        head.replace("\nindex", "\nextra x\nextra y\nindex", 1),
        head + " ",
    ]:
        assert split_proof(bad + "\n\n" + cp) is None or bad.endswith(" ")
    assert split_proof(head) is None  # no checkpoint
    Checkpoint.parse(note.split("\n\n", 1)[0] + "\n")


def _mutations(doc: dict) -> list[dict]:
    """Documents one change away from ``doc``: each field removed, retyped, over-long; an
    unknown field; the same for the nested records."""
    values = [None, 0, -1, 2**53, "", "x" * 5000, "has space", [], {}, True, ["x"], {"a": 1}]
    out = []
    for key in list(doc):
        d = dict(doc)
        del d[key]
        out.append(d)
        for v in values:
            out.append({**doc, key: v})
    out.append({**doc, "unknown": 1})
    return out


def test_compiled_specs_never_accept_what_validate_refuses(made) -> None:
    _, ex, _ = made
    env = canonical.loads(envelope_bytes(ex.envelopes[MID]))  # as parsed: keys in order
    doc_ok = compile_record({**ENVELOPE, "bundle": F("object", required=True, fields=BUNDLE)}, 1)
    bundle_ok = compile_record(BUNDLE)
    assert doc_ok(env) and bundle_ok(env["bundle"])  # the fast path is taken on real bundles
    bundles = _mutations(env["bundle"])
    bundles += [{**env["bundle"], "clock": c} for c in _mutations(env["bundle"]["clock"])]
    att = {"name": "a.txt", "sha256": "0" * 64, "size": 1, "media_type": "text/plain"}
    bundles += [{**env["bundle"], "attachments": [a]} for a in [att, *_mutations(att)]]
    accepted = 0
    for b in bundles:
        try:
            validate(BUNDLE, b)
            valid = True
        except Exception:
            valid = False
        if bundle_ok(b):
            assert valid, b
            accepted += 1
    assert accepted > 5  # the mutations include valid documents the predicate does accept
    for e in _mutations(env) + [{**env, "sig": s} for s in _mutations(env["sig"])]:
        if doc_ok(e):
            validate(ENVELOPE, e)
            validate(BUNDLE, e["bundle"])
