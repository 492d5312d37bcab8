"""PHI scrubber: what it must remove, what it must leave alone, and that it is stable and fast."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from osiris_core import canonical
from osiris_core.phi import redaction, scrub, scrub_obj

# ----------------------------------------------------------------------------- explicit cases

SENSITIVE = [
    # (text, value that must disappear, kind)
    ("SSN 123-45-6789 on file", "123-45-6789", "ssn"),
    ("ssn is 123 45 6789.", "123 45 6789", "ssn"),
    ("SSN: 123456789", "123456789", "ssn"),
    ("social security number 078-05-1120", "078-05-1120", "ssn"),
    ("SS# 219099999", "219099999", "ssn"),
    ("MRN: 12345678", "12345678", "mrn"),
    ("MRN#A1234567", "A1234567", "mrn"),
    ("mrn=00042817", "00042817", "mrn"),
    ("medical record number 1234567", "1234567", "mrn"),
    ("Medical Record No. MR-778812", "MR-778812", "mrn"),
    ("DOB: 01/02/1980", "01/02/1980", "dob"),
    ("date of birth 1980-01-02", "1980-01-02", "dob"),
    ("born 1/2/80", "1/2/80", "dob"),
    ("born on 12.31.1975", "12.31.1975", "dob"),
    ("D.O.B. Jan 2, 1980", "Jan 2, 1980", "dob"),
    ("birthdate=2 March 1961", "2 March 1961", "dob"),
    ("call (555) 123-4567 today", "(555) 123-4567", "phone"),
    ("cell 555-123-4567", "555-123-4567", "phone"),
    ("+1 555 123 4567", "555 123 4567", "phone"),
    ("tel 555.123.4567", "555.123.4567", "phone"),
    ("555.123.4567", "555.123.4567", "phone"),
    ("+1-555-123-4567", "555-123-4567", "phone"),
    ("1-800-555-1234", "800-555-1234", "phone"),
    ("+1 (555) 123-4567", "123-4567", "phone"),
    ("phone: 555 123 4567", "555 123 4567", "phone"),
    ("Phone=5551234567", "5551234567", "phone"),
    ("555 123-4567", "555 123-4567", "phone"),
    (
        "mail jane.doe+billing@clinic-example.org now",
        "jane.doe+billing@clinic-example.org",
        "email",
    ),
    ("<JOHN_SMITH@Example.COM>", "JOHN_SMITH@Example.COM", "email"),
    ("mailto:a1@b.co", "a1@b.co", "email"),
    ("Patient: Jane Q. Doe, seen", "Jane Q. Doe", "name"),
    ("patient_name=John Smith", "John Smith", "name"),
]


@pytest.mark.parametrize(("text", "value", "kind"), SENSITIVE)
def test_sensitive_values_are_redacted(text: str, value: str, kind: str) -> None:
    out = scrub(text)
    assert value not in out
    assert redaction(kind) in out
    assert scrub(out) == out


def test_labels_stay_so_readers_know_what_was_removed() -> None:
    assert scrub("MRN: 12345678") == "MRN: [REDACTED:mrn]"
    assert scrub("DOB: 01/02/1980, ok") == "DOB: [REDACTED:dob], ok"
    assert scrub("x 123-45-6789 y") == "x [REDACTED:ssn] y"
    assert scrub("a@b.example y") == "[REDACTED:email] y"


def test_several_kinds_in_one_line() -> None:
    text = (
        "pt John, DOB 1980-01-02, MRN 9911223, SSN 123-45-6789, (555) 123-4567, j@x.org; "
        "host ws01 at 10.0.0.5"
    )
    out = scrub(text)
    for gone in ("1980-01-02", "9911223", "123-45-6789", "123-4567", "j@x.org"):
        assert gone not in out
    assert out.endswith("host ws01 at 10.0.0.5")


CLEAN = [
    "ws01.clinic.local",
    "DC-01 10.0.0.5 192.168.100.200:8080 fe80::1ff:fe23:4567:890a",
    "Microsoft Windows 10.0.19045 build 10.0.19045.3693, kernel 6.6.32",
    "{123e4567-e89b-12d3-a456-426614174000} 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "2026-11-25T12:00:00.000Z started; 2026-11-25 12:00:00 finished; 25/11/2026",
    "Installed KB5034441 and KB5034763; pending KB890830",
    "port 3389 open; ports 21, 23, 25, 69, 111, 135, 139, 445, 1433; TCP 135 139 445 3389",
    "listening 0.0.0.0:5986 and [::1]:443",
    r"C:\Windows\System32\drivers\etc\hosts and C:\ProgramData\Osiris\state.db",
    "/nix/store/0c4vcbbkkyx1yk6j42bvmqk1yyq7cw84-openssh-9.6p1/bin/sshd",
    "/var/lib/osiris/outbox-000123.db size 1048576 bytes, epoch 1700000000",
    "ssh root@10.0.0.5 -p 2222",
    "user CLINIC\\frontdesk uid=1000(frontdesk) gid=100(users)",
    "offset_ms=-12 stratum 2 delay 0.0123 s",
    "generation 123 of 456, 7890 files",
    "Get-HotFix | Where-Object InstalledOn -gt (Get-Date).AddDays(-30)",
    "nft ruleset sha256 ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12",
    "ip 172.16.254.1 mask 255.255.255.0 gw 172.16.254.254",
    "ruleset v1.2.3-rc.1+build.45, policy_version 2026.11.3",
    "odd versions 100.100.1000 1200.100.1000",
    "patient records synced: 12; patients: none; MRN field empty",
    "nothing to see here",
    "",
]


@pytest.mark.parametrize("text", CLEAN)
def test_clean_text_passes_unchanged(text: str) -> None:
    assert scrub(text) == text


def test_scrub_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        scrub(12345)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- scrub_obj


def test_scrub_obj_redacts_phi_keys_whole_and_scrubs_the_rest() -> None:
    original = {
        "Patient_Name": "Jane Doe",
        "patient": {"first_name": "Jane", "id": 7},
        "patientDOB": "1980-01-02",
        "dob": "01/02/1980",
        "SSN": 123456789,
        "mrn": ["A1", "A2"],
        "e-mail": "jane@x.org",
        "Phone Number": "555-123-4567",
        "first-name": "Jane",
        "last_name": "Doe",
        "email": None,
        "host": "ws01",
        "ok": True,
        "count": 3,
        "output": "backup for SSN 123-45-6789 done",
        "nested": [{"patient_phone": "x"}, "call 555-123-4567", 5, None, ("a@b.co",)],
    }
    before = repr(original)
    out = scrub_obj(original)
    assert repr(original) == before, "scrub_obj must not mutate its input"
    assert list(out) == list(original), "keys are never changed"
    assert out["Patient_Name"] == "[REDACTED:name]"
    assert out["patient"] == "[REDACTED:name]"
    assert out["patientDOB"] == "[REDACTED:dob]"
    assert out["dob"] == "[REDACTED:dob]"
    assert out["SSN"] == "[REDACTED:ssn]"
    assert out["mrn"] == "[REDACTED:mrn]"
    assert out["e-mail"] == "[REDACTED:email]"
    assert out["Phone Number"] == "[REDACTED:phone]"
    assert out["first-name"] == "[REDACTED:name]"
    assert out["last_name"] == "[REDACTED:name]"
    assert out["email"] is None
    assert out["host"] == "ws01"
    assert out["ok"] is True and out["count"] == 3
    assert out["output"] == "backup for SSN [REDACTED:ssn] done"
    assert out["nested"] == [
        {"patient_phone": "[REDACTED:phone]"},
        "call [REDACTED:phone]",
        5,
        None,
        ("[REDACTED:email]",),
    ]
    assert scrub_obj(out) == out


def test_scrub_obj_leaves_ordinary_keys_alone() -> None:
    doc = {
        "hostname": "ws01",
        "phone_home_enabled": True,
        "patients_seen": 4,
        "patient_count": 9,
        "name": "Windows Defender",
        "mailbox": "journal",
        "version": "10.0.19045",
    }
    assert scrub_obj(doc) == doc


def test_scrub_obj_non_containers() -> None:
    for v in (None, True, 0, -5, "plain"):
        assert scrub_obj(v) == v


# ----------------------------------------------------------------------------- properties

HOSTS = st.builds(
    lambda p, n, d: f"{p}{n:02d}{d}",
    st.sampled_from(["ws", "dc", "srv", "fs", "nas", "win", "lin", "db", "web", "APP-"]),
    st.integers(0, 99),
    st.sampled_from(["", ".clinic.local", ".example.org", ".corp.lan"]),
)
IPV4 = st.builds(
    lambda a, b, c, d, port: f"{a}.{b}.{c}.{d}" + (f":{port}" if port else ""),
    *(st.integers(0, 255) for _ in range(4)),
    st.one_of(st.none(), st.integers(1, 65535)),
)
# A dotted [2-9]NN.NNN.NNNN is documented to read as a phone number, so it is no clean version.
_PHONE_SHAPED = re.compile(r"[2-9][0-9]{2}\.[0-9]{3}\.[0-9]{4}")
VERSIONS = (
    st.lists(st.integers(0, 99999), min_size=2, max_size=4)
    .map(lambda xs: ".".join(map(str, xs)))
    .filter(lambda v: not _PHONE_SHAPED.fullmatch(v))
)
GUIDS = st.uuids().map(str)
SHA = st.binary(min_size=32, max_size=32).map(lambda b: b.hex())
TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(canonical.format_time)
KBS = st.integers(100000, 9999999).map(lambda n: f"KB{n}")
PORTS = st.builds(
    lambda w, p: f"{w}{p}", st.sampled_from(["port ", ":", "tcp/", "udp/"]), st.integers(1, 65535)
)
PATHS = st.sampled_from(
    [
        r"C:\Windows\System32\config",
        "/var/lib/osiris/state.db",
        "/etc/ssh/sshd_config",
        "/nix/store/0c4vcbbkkyx1yk6j42bvmqk1yyq7cw84-openssh-9.6p1",
    ]
)
WORDS = st.sampled_from(
    ["ok", "drift", "healed", "firewall", "enabled", "Defender", "backup", "done", "=", "-", "(x)"]
)
CLEAN_TOKEN = st.one_of(HOSTS, IPV4, VERSIONS, GUIDS, SHA, TIMES, KBS, PORTS, PATHS, WORDS)
CLEAN_TEXT = st.lists(CLEAN_TOKEN, max_size=12).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(CLEAN_TEXT)
@example("10.0.19045 2026-11-25T12:00:00.000Z KB5034441 port 3389")
def test_clean_generated_text_is_unchanged(text: str) -> None:
    assert scrub(text) == text


def _ssn(a: int, g: int, s: int, sep: str) -> tuple[str, str]:
    span = f"{a:03d}{sep}{g:02d}{sep}{s:04d}"
    return span, span


SSNS = st.builds(
    _ssn,
    st.integers(1, 899).filter(lambda a: a != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
    st.sampled_from(["-", " "]),
)


def _phone(a: int, e: int, n: int, label: str, fmt: str) -> tuple[str, str]:
    number = fmt.format(a=f"{a:03d}", e=f"{e:03d}", n=f"{n:04d}")
    if label and fmt.startswith("+"):
        number = number[1:]  # "phone: 1 555 ..." rather than "phone: +1 ..."
    return label + number, number


PHONES = st.builds(
    _phone,
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999),
    st.sampled_from(["", "", "phone: ", "Tel ", "cell: "]),
    st.sampled_from(
        [
            "({a}) {e}-{n}",
            "({a}){e}-{n}",
            "{a}-{e}-{n}",
            "+1 {a} {e} {n}",
            "{a}.{e}.{n}",
            "+1-{a}-{e}-{n}",
            "1-{a}-{e}-{n}",
            "+1 ({a}) {e}-{n}",
            "+1.{a}.{e}.{n}",
            "{a} {e}-{n}",
        ]
    ),
)
LABELLED_SPACED_PHONES = st.builds(
    lambda label, a, e, n: (f"{label}{a} {e} {n:04d}", f"{a} {e} {n:04d}"),
    st.sampled_from(["phone: ", "Phone ", "tel. ", "fax: ", "mobile "]),
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999),
)
_LABEL = r"[a-z][a-z0-9]{0,10}"
EMAILS = st.builds(
    lambda local, dom, tld: (f"{local}@{dom}.{tld}", f"{local}@{dom}.{tld}"),
    st.from_regex(r"[a-z][a-z0-9._+-]{0,15}", fullmatch=True),
    st.lists(st.from_regex(_LABEL, fullmatch=True), min_size=1, max_size=3).map(".".join),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
MRNS = st.builds(
    lambda label, prefix, num: (f"{label}{prefix}{num}", f"{prefix}{num}"),
    st.sampled_from(["MRN: ", "MRN#", "MRN ", "mrn=", "medical record number ", "MR# "]),
    st.sampled_from(["", "A", "MR", "XYZ"]),
    st.integers(100000, 9999999999).map(str),
)


def _dob(label: str, d: datetime, fmt: int) -> tuple[str, str]:
    value = [
        f"{d.month:02d}/{d.day:02d}/{d.year}",
        f"{d.month}/{d.day}/{d.year % 100:02d}",
        f"{d.year}-{d.month:02d}-{d.day:02d}",
        d.strftime("%B ") + f"{d.day}, {d.year}",
        f"{d.day} " + d.strftime("%b %Y"),
    ][fmt]
    return f"{label}{value}", value


DOBS = st.builds(
    _dob,
    st.sampled_from(["DOB: ", "DOB ", "D.O.B. ", "date of birth ", "Date of Birth: ", "born "]),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2025, 12, 31)),
    st.integers(0, 4),
)
SPANS = st.one_of(SSNS, PHONES, LABELLED_SPACED_PHONES, EMAILS, MRNS, DOBS)
SEPARATORS = st.sampled_from([" | ", "; ", "\n", ". ", " : ", "\t|\t"])


@st.composite
def mixed_text(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, str]]]:
    """Clean filler with sensitive spans injected between tokens, delimited by punctuation."""
    parts: list[str] = []
    filler: list[str] = []
    spans: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 6))):
        clean = draw(CLEAN_TEXT)
        parts.append(clean)
        filler.append(clean)
        parts.append(draw(SEPARATORS))
        span, value = draw(SPANS)
        parts.append(span)
        spans.append((span, value))
        parts.append(draw(SEPARATORS))
    parts.append(draw(CLEAN_TEXT))
    filler.append(parts[-1])
    return "".join(parts), "\n".join(filler), spans


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_text())
def test_injected_phi_never_survives(case: tuple[str, str, list[tuple[str, str]]]) -> None:
    text, filler, spans = case
    out = scrub(text)
    for span, value in spans:
        assert out.count(value) <= filler.count(value), (span, out)
        for run in re.findall(r"[0-9]{4,}", value):
            assert out.count(run) <= filler.count(run), (span, run, out)
    assert scrub(out) == out


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="0123456789 -./()+@:#MRNDOBabornx\n", max_size=60)))
def test_scrub_is_idempotent(text: str) -> None:
    once = scrub(text)
    assert scrub(once) == once


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda kids: (
            st.lists(kids, max_size=4)
            | st.dictionaries(
                st.sampled_from(["host", "dob", "patient_name", "output", "Phone", "x"]), kids
            )
        ),
        max_leaves=15,
    )
)
def test_scrub_obj_is_idempotent_and_keeps_shape(obj: object) -> None:
    once = scrub_obj(obj)
    assert scrub_obj(once) == once
    assert type(once) is type(obj)
    if isinstance(obj, dict):
        assert list(once) == list(obj)


# ----------------------------------------------------------------------------- speed


def test_scrub_is_linear_on_large_and_hostile_inputs() -> None:
    log_line = "2026-11-25T12:00:00.000Z ws01 10.0.0.5:3389 KB5034441 build 10.0.19045.3693 ok\n"
    inputs = [
        log_line * 3000,  # ~240 KB of ordinary evidence output
        "a" * 100_000 + "@" + "b" * 100_000,  # would be quadratic without the look-behind
        "1-" * 100_000,
        "1 " * 100_000,
        "x@" + "a." * 50_000 + "1",
        "MRN " * 50_000,
        "born 1/" * 30_000,
    ]
    start = time.perf_counter()
    for text in inputs:
        scrub(text)
    assert time.perf_counter() - start < 2.0
