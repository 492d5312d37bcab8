"""AgentConfig: defaults, validation naming its key, TOML round trip, window, jitter, docs."""

from __future__ import annotations

import random
import tomllib
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osiris_agent import config as C
from osiris_agent.config import AgentConfig, ConfigError, load_config, render_docs, to_toml
from osiris_core.errors import OsirisError

REPO = Path(__file__).resolve().parents[2]
URL = "https://cc.example-msp.com"


def make(**sections: dict) -> AgentConfig:
    doc: dict = {"server": {"url": URL}}
    for name, body in sections.items():
        doc.setdefault(name, {}).update(body)
    return AgentConfig.from_dict(doc)


def error_for(doc: dict) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        AgentConfig.from_dict(doc)
    return ei.value


# --- defaults -------------------------------------------------------------------------------


def test_defaults() -> None:
    cfg = make()
    assert cfg.server.url == URL and cfg.server.ca_file is None
    a = cfg.agent
    assert a.state_dir == "/var/lib/osiris"
    assert a.key_file == "/var/lib/osiris/appliance.key"
    assert a.cosign_key_file == "/var/lib/osiris/cosign.key"
    assert a.token_file == "/var/lib/osiris/token"
    assert (a.checkin_interval_s, a.jitter_pct, a.order_ttl_s, a.lab) == (60, 10, 900, False)
    w = cfg.window
    assert w.days == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    assert (w.start, w.duration_min, w.timezone) == ("02:00", 120, "UTC")
    assert w.allow_disruptive_outside is False
    assert cfg.deployment.mode == "direct" and cfg.deployment.reseller_id is None
    assert cfg.reseller.syslog_target is None and cfg.reseller.webhook_url is None
    assert len(cfg.ntp.servers) >= cfg.ntp.min_good
    assert cfg.ntp.max_skew_ms == 5000
    assert (cfg.evidence.keep_last, cfg.evidence.min_age_days) == (200, 90)
    assert cfg.outbox.max_entries == 100_000
    h = cfg.healing
    assert h.l2_enabled is False and h.l2_min_confidence == 70 and h.l2_base_url is None


def test_derived_paths_follow_state_dir_but_explicit_ones_win() -> None:
    cfg = make(agent={"state_dir": "/srv/osiris", "token_file": "/run/keys/token"})
    assert cfg.agent.key_file == "/srv/osiris/appliance.key"
    assert cfg.agent.token_file == "/run/keys/token"


def test_defaults_match_the_schema_table() -> None:
    cfg = make()
    for opt in C.OPTIONS:
        value = getattr(getattr(cfg, opt.section), opt.name)
        if opt.required or isinstance(opt.default, C.Derived):
            continue
        expected = tuple(opt.default) if isinstance(opt.default, list) else opt.default
        assert value == expected, opt.key


def test_dataclasses_and_schema_have_exactly_the_same_keys() -> None:
    from_types = {f"{s}.{f.name}" for s, t in C.SECTION_TYPES.items() for f in fields(t)}
    assert from_types == {o.key for o in C.OPTIONS}
    assert set(C.SECTION_TYPES) == set(C.SECTIONS) == {o.section for o in C.OPTIONS}
    assert [f.name for f in fields(AgentConfig)] == list(C.SECTIONS)


# --- validation: every error names its key --------------------------------------------------


BAD_VALUE = {"str": 5, "int": "60", "bool": 1, "list": "mon"}


@pytest.mark.parametrize("opt", C.OPTIONS, ids=lambda o: o.key)
def test_wrong_type_names_the_key(opt: C.Option) -> None:
    doc = {"server": {"url": URL}}
    doc.setdefault(opt.section, {})[opt.name] = BAD_VALUE[opt.kind]
    e = error_for(doc)
    assert e.key == opt.key
    assert str(e) == f"{opt.key}: {e.why}"
    assert "expected" in e.why


@pytest.mark.parametrize("opt", [o for o in C.OPTIONS if o.lo is not None], ids=lambda o: o.key)
def test_int_bounds_name_the_key(opt: C.Option) -> None:
    for bad in (opt.lo - 1, opt.hi + 1):
        e = error_for({"server": {"url": URL}, opt.section: {opt.name: bad}})
        assert e.key == opt.key
        assert f"between {opt.lo} and {opt.hi}" in e.why
    if opt.key == "ntp.min_good":
        return  # its upper bound also depends on the number of servers
    for good in (opt.lo, opt.hi):
        extra = {"lab": True} if opt.key == "agent.scan_interval_s" else {}  # < 60: lab only
        cfg = make(**{opt.section: {opt.name: good, **extra}})
        assert getattr(getattr(cfg, opt.section), opt.name) == good


def test_bools_are_not_integers_and_floats_are_refused() -> None:
    assert error_for({"server": {"url": URL}, "agent": {"jitter_pct": True}}).key == (
        "agent.jitter_pct"
    )
    e = error_for({"server": {"url": URL}, "agent": {"checkin_interval_s": 60.0}})
    assert e.key == "agent.checkin_interval_s" and "float" in e.why


BAD_DOCS = [
    ({}, "server.url", "required"),
    ({"server": {"url": "ftp://cc.example"}}, "server.url", "https"),
    ({"server": {"url": "cc.example"}}, "server.url", "https"),
    ({"server": {"url": "https://"}}, "server.url", "no host"),
    ({"server": {"url": "https://u:p@cc.example"}}, "server.url", "credentials"),
    ({"server": {"url": "https://cc.example:99999"}}, "server.url", "URL"),
    ({"server": {"url": "https://cc.example/?x=1"}}, "server.url", "query"),
    ({"server": {"url": "http://cc.example"}}, "server.url", "agent.lab"),
    ({"server": {"url": URL, "ca_file": "ca.pem"}}, "server.ca_file", "absolute"),
    ({"server": {"url": URL, "port": 443}}, "server.port", "unknown key"),
    ({"server": {"url": URL}, "agnet": {}}, "agnet", "did you mean 'agent'"),
    ({"server": {"url": URL}, "agent": {"jiter_pct": 5}}, "agent.jiter_pct", "'jitter_pct'"),
    ({"server": {"url": URL}, "agent": "x"}, "agent", "table"),
    ({"server": {"url": URL}, "agent": {"state_dir": "var/lib"}}, "agent.state_dir", "absolute"),
    ({"server": {"url": URL}, "agent": {"jitter_pct": 51}}, "agent.jitter_pct", "0 and 50"),
    ({"server": {"url": URL}, "agent": {"jitter_pct": -1}}, "agent.jitter_pct", "0 and 50"),
    ({"server": {"url": URL}, "window": {"days": ["mon", "Tue"]}}, "window.days", "'Tue'"),
    ({"server": {"url": URL}, "window": {"days": ["mon", "mon"]}}, "window.days", "twice"),
    ({"server": {"url": URL}, "window": {"days": [1]}}, "window.days", "list of strings"),
    ({"server": {"url": URL}, "window": {"start": "2:00"}}, "window.start", "HH:MM"),
    ({"server": {"url": URL}, "window": {"start": "24:00"}}, "window.start", "HH:MM"),
    ({"server": {"url": URL}, "window": {"start": "02:60"}}, "window.start", "HH:MM"),
    ({"server": {"url": URL}, "window": {"duration_min": 0}}, "window.duration_min", "between"),
    ({"server": {"url": URL}, "window": {"timezone": "Mars/Olympus"}}, "window.timezone", "IANA"),
    ({"server": {"url": URL}, "window": {"timezone": "../etc/passwd"}}, "window.timezone", "IANA"),
    ({"server": {"url": URL}, "window": {"timezone": ""}}, "window.timezone", "IANA"),
    ({"server": {"url": URL}, "deployment": {"mode": "msp"}}, "deployment.mode", "one of"),
    (
        {"server": {"url": URL}, "deployment": {"mode": "reseller"}},
        "deployment.reseller_id",
        "reseller",
    ),
    ({"server": {"url": URL}, "deployment": {"reseller_id": "a b"}}, "deployment.reseller_id", ""),
    (
        {"server": {"url": URL}, "reseller": {"syslog_target": "syslog.example:514"}},
        "reseller.syslog_target",
        "udp://",
    ),
    (
        {"server": {"url": URL}, "reseller": {"syslog_target": "udp://h:70000"}},
        "reseller.syslog_target",
        "port",
    ),
    (
        {"server": {"url": URL}, "reseller": {"webhook_url": "http://rmm.example/hook"}},
        "reseller.webhook_url",
        "agent.lab",
    ),
    ({"server": {"url": URL}, "ntp": {"servers": []}}, "ntp.servers", "at least one"),
    ({"server": {"url": URL}, "ntp": {"servers": ["h:0"]}}, "ntp.servers", "port"),
    ({"server": {"url": URL}, "ntp": {"servers": ["a b"]}}, "ntp.servers", "host"),
    (
        {"server": {"url": URL}, "ntp": {"servers": ["a.example"], "min_good": 2}},
        "ntp.min_good",
        "only 1",
    ),
    ({"server": {"url": URL}, "healing": {"l2_enabled": True}}, "healing.l2_base_url", "required"),
    (
        {"server": {"url": URL}, "healing": {"l2_enabled": True, "l2_base_url": "https://l.ex"}},
        "healing.l2_model",
        "required",
    ),
    (
        {"server": {"url": URL}, "healing": {"l2_base_url": "http://llm.example"}},
        "healing.l2_base_url",
        "agent.lab",
    ),
    ({"server": {"url": URL}, "healing": {"l2_model": "  "}}, "healing.l2_model", "empty"),
    (
        {"server": {"url": URL}, "healing": {"l2_min_confidence": 101}},
        "healing.l2_min_confidence",
        "",
    ),
]


@pytest.mark.parametrize(("doc", "key", "why"), BAD_DOCS)
def test_validation_errors_name_their_key(doc: dict, key: str, why: str) -> None:
    e = error_for(doc)
    assert e.key == key, str(e)
    assert why in e.why
    assert isinstance(e, OsirisError) and e.code == "E_CONFIG"
    assert str(e).startswith(f"{key}: ")


def test_http_is_fine_to_localhost_or_in_lab_mode() -> None:
    for url in ("http://127.0.0.1:8443", "http://localhost", "http://[::1]:8080/api"):
        assert make(server={"url": url}).server.url == url
    cfg = make(
        server={"url": "http://cc.lab"},
        agent={"lab": True},
        reseller={"webhook_url": "http://rmm.lab/hook"},
        healing={"l2_base_url": "http://llm.lab:11434"},
    )
    assert cfg.agent.lab


def test_reseller_and_l2_when_complete() -> None:
    cfg = make(
        deployment={"mode": "reseller", "reseller_id": "acme-it"},
        reseller={"syslog_target": "tcp://[fd00::1]:6514", "webhook_url": "https://rmm.ex/h"},
        healing={"l2_enabled": True, "l2_base_url": "https://llm.ex", "l2_model": "m-1"},
    )
    assert cfg.deployment.reseller_id == "acme-it"
    assert cfg.healing.l2_model == "m-1"


# --- files ------------------------------------------------------------------------------------


def test_load_config_reads_a_real_file(tmp_path: Path) -> None:
    p = tmp_path / "agent.toml"
    p.write_text(
        '[server]\nurl = "https://cc.example"\n\n[window]\ndays = ["sat", "sun"]\n'
        'timezone = "America/Chicago"\n'
    )
    cfg = load_config(p)
    assert cfg.window.days == ("sat", "sun") and cfg.window.timezone == "America/Chicago"
    assert load_config(str(p)) == cfg


def test_load_config_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as ei:
        load_config(missing)
    assert ei.value.key == str(missing) and "no such file" in ei.value.why
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nurl = 1\n")
    with pytest.raises(ConfigError) as ei:
        load_config(bad)
    assert "invalid TOML" in ei.value.why and "line 1" in ei.value.why
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[server]\nurl = "https://caf\xe9.example"\n')
    with pytest.raises(ConfigError):
        load_config(latin)
    with pytest.raises(ConfigError) as ei:
        load_config(tmp_path)  # a directory
    assert "cannot read" in ei.value.why


def test_check_command_prints_the_cli_message(tmp_path: Path, capsys) -> None:
    p = tmp_path / "agent.toml"
    p.write_text('[server]\nurl = "https://cc.example"\n[agent]\njitter_pct = 0.1\n')
    assert C.main(["--check", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("osiris-agent: config error: agent.jitter_pct: expected an integer")
    p.write_text('[server]\nurl = "https://cc.example"\n')
    assert C.main(["--check", str(p)]) == 0


# --- round trip ---------------------------------------------------------------------------------


def test_to_toml_round_trips_a_full_config(tmp_path: Path) -> None:
    cfg = make(
        server={"url": "https://cc.example/base", "ca_file": "/etc/osiris/ca.pem"},
        agent={"state_dir": '/srv/os"iris\\x', "jitter_pct": 0, "lab": True},
        window={"days": [], "start": "23:59", "timezone": "Asia/Kolkata"},
        deployment={"mode": "reseller", "reseller_id": "r_1"},
        reseller={"syslog_target": "udp://10.0.0.5"},
        healing={"l2_model": 'llama "3"\t\n\x7f\x01 é 😀', "l2_key_file": "/k"},
    )
    text = to_toml(cfg)
    tomllib.loads(text)  # valid TOML for any reader, not only ours
    p = tmp_path / "agent.toml"
    p.write_text(text, encoding="utf-8")
    assert load_config(p) == cfg


def _valid_value(opt: C.Option) -> st.SearchStrategy:
    special = {
        "server.url": st.sampled_from([URL, "https://x.example:8443/p", "http://127.0.0.1:9"]),
        "window.days": st.lists(st.sampled_from(C.WEEKDAYS), unique=True),
        "window.start": st.builds("{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59)),
        "window.timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
        "deployment.reseller_id": st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True),
        "reseller.syslog_target": st.sampled_from(["udp://h.example", "tcp://10.1.1.1:601"]),
        "reseller.webhook_url": st.just("https://rmm.example/hook"),
        "ntp.servers": st.lists(
            st.sampled_from(["a.example", "b.example:123", "127.0.0.1:1123"]),
            min_size=3,
            max_size=4,
        ),
        "ntp.min_good": st.integers(1, 3),
        "healing.l2_base_url": st.just("https://llm.example/v1"),
        "healing.l2_model": st.text(min_size=1, max_size=12).filter(str.strip),
        "agent.switch_command": st.sampled_from(
            [[], ["/usr/bin/python3", "-m", "osiris_lab.standin_switch", "--root", "/r"]]
        ),
        "enrolment.provision_dirs": st.lists(st.sampled_from(["/media/usb", "/run/osiris-usb"])),
        "egress.hosts": st.lists(st.sampled_from(["cc.example.com", "time.google.com"])),
        "egress.resolvers": st.lists(st.sampled_from(["10.0.0.53", "2001:db8::53", "1.1.1.1"])),
    }
    if opt.key in special:
        return special[opt.key]
    if opt.choices:
        return st.sampled_from(opt.choices)
    if opt.kind == "int":
        return st.integers(opt.lo, opt.hi)
    if opt.kind == "bool":
        return st.booleans()
    assert opt.doc_type == "absolute path", opt.key
    return st.text(min_size=0, max_size=10).map(lambda s: "/" + s.replace("\x00", ""))


@st.composite
def valid_docs(draw) -> dict:
    doc: dict = {"server": {"url": URL}}
    for opt in C.OPTIONS:
        if opt.required or draw(st.booleans()):
            doc.setdefault(opt.section, {})[opt.name] = draw(_valid_value(opt))
    if doc.get("deployment", {}).get("mode") == "reseller":
        doc["deployment"].setdefault("reseller_id", "r1")
    agent = doc.get("agent", {})
    if agent.get("scan_interval_s", 60) < C.MIN_SCAN_INTERVAL_S:
        agent["lab"] = True
    if doc.get("healing", {}).get("l2_enabled"):
        doc["healing"].setdefault("l2_base_url", "https://llm.example")
        doc["healing"].setdefault("l2_model", "m")
    return doc


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(valid_docs())
def test_round_trip_property(doc: dict) -> None:
    cfg = AgentConfig.from_dict(doc)
    text = to_toml(cfg)
    assert AgentConfig.from_dict(tomllib.loads(text)) == cfg
    for section, body in doc.items():  # what was given is what is kept
        for name, value in body.items():
            got = getattr(getattr(cfg, section), name)
            assert (list(got) if isinstance(got, tuple) else got) == value


# --- maintenance window ---------------------------------------------------------------------


def win(**w) -> AgentConfig:
    return make(window=w)


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


# 2024-06-07 is a Friday.
NY_SPRING = {"timezone": "America/New_York", "start": "02:30", "duration_min": 60}
NY_FALL = {"timezone": "America/New_York", "start": "01:00", "duration_min": 90}
WINDOW_CASES = [
    # simple daily 02:00 + 120 min, UTC
    ({}, utc(2024, 6, 7, 1, 59, 59), False),
    ({}, utc(2024, 6, 7, 2, 0), True),  # start inclusive
    ({}, utc(2024, 6, 7, 3, 59, 59), True),
    ({}, utc(2024, 6, 7, 4, 0), False),  # end exclusive
    # a window that crosses midnight into a day that is not listed
    ({"days": ["fri"], "start": "23:00", "duration_min": 180}, utc(2024, 6, 7, 23, 30), True),
    ({"days": ["fri"], "start": "23:00", "duration_min": 180}, utc(2024, 6, 8, 1, 30), True),
    ({"days": ["fri"], "start": "23:00", "duration_min": 180}, utc(2024, 6, 8, 2, 0), False),
    ({"days": ["fri"], "start": "23:00", "duration_min": 180}, utc(2024, 6, 7, 1, 30), False),
    ({"days": ["fri"], "start": "23:00", "duration_min": 180}, utc(2024, 6, 7, 22, 59), False),
    # Sunday night into Monday (wrap of the week)
    ({"days": ["sun"], "start": "22:00", "duration_min": 240}, utc(2024, 6, 10, 1, 0), True),
    ({"days": ["sun"], "start": "22:00", "duration_min": 240}, utc(2024, 6, 11, 1, 0), False),
    # a full-day window
    ({"days": ["sat"], "start": "00:00", "duration_min": 1440}, utc(2024, 6, 8, 23, 59), True),
    ({"days": ["sat"], "start": "00:00", "duration_min": 1440}, utc(2024, 6, 9, 0, 0), False),
    # no days: never
    ({"days": []}, utc(2024, 6, 7, 2, 30), False),
    # only weekdays listed
    ({"days": ["sat", "sun"]}, utc(2024, 6, 7, 2, 30), False),
    ({"days": ["sat", "sun"]}, utc(2024, 6, 8, 2, 30), True),
    # time zones: 02:00 New York is 06:00 UTC in summer (EDT), 07:00 UTC in winter (EST)
    ({"timezone": "America/New_York"}, utc(2024, 6, 7, 6, 30), True),
    ({"timezone": "America/New_York"}, utc(2024, 6, 7, 2, 30), False),
    ({"timezone": "America/New_York"}, utc(2024, 1, 10, 6, 30), False),
    ({"timezone": "America/New_York"}, utc(2024, 1, 10, 7, 30), True),
    # the local weekday counts, not the UTC one: Fri 22:00 in LA is Sat 05:00 UTC
    (
        {"timezone": "America/Los_Angeles", "days": ["fri"], "start": "22:00", "duration_min": 60},
        utc(2024, 6, 8, 5, 30),
        True,
    ),
    (
        {"timezone": "Asia/Tokyo", "days": ["mon"], "start": "01:00", "duration_min": 60},
        utc(2024, 6, 9, 16, 30),  # Sunday in UTC, Monday 01:30 in Tokyo
        True,
    ),
    # DST spring forward (US 2024-03-10 02:00 -> 03:00): 02:30 does not exist, opens at 03:30 EDT
    (NY_SPRING, utc(2024, 3, 10, 7, 29), False),
    (NY_SPRING, utc(2024, 3, 10, 7, 30), True),
    (NY_SPRING, utc(2024, 3, 10, 8, 29), True),
    (NY_SPRING, utc(2024, 3, 10, 8, 30), False),
    # the day after spring forward is normal again: 02:30 EDT = 06:30 UTC
    (NY_SPRING, utc(2024, 3, 11, 6, 45), True),
    # DST fall back (US 2024-11-03 02:00 -> 01:00): 01:00 happens twice; the first one counts and
    # the window lasts 90 elapsed minutes: 05:00..06:30 UTC
    (NY_FALL, utc(2024, 11, 3, 5, 0), True),
    (NY_FALL, utc(2024, 11, 3, 6, 15), True),
    (NY_FALL, utc(2024, 11, 3, 6, 30), False),
    # Berlin (EU DST 2024-03-31 02:00 -> 03:00), window crossing midnight on the DST night
    (
        {"timezone": "Europe/Berlin", "days": ["sat"], "start": "23:00", "duration_min": 300},
        utc(2024, 3, 31, 2, 30),  # Sun 04:30 CEST: opened Sat 23:00 CET = 22:00 UTC, ends 03:00
        True,
    ),
    (
        {"timezone": "Europe/Berlin", "days": ["sat"], "start": "23:00", "duration_min": 300},
        utc(2024, 3, 31, 3, 0),
        False,
    ),
]  # fmt: skip


@pytest.mark.parametrize(("window", "now", "expected"), WINDOW_CASES)
def test_in_maintenance_window(window: dict, now: datetime, expected: bool) -> None:
    assert win(**window).in_maintenance_window(now) is expected


def test_window_accepts_any_aware_datetime_and_refuses_naive() -> None:
    cfg = win(timezone="America/New_York")
    ny = datetime(2024, 6, 7, 2, 30, tzinfo=ZoneInfo("America/New_York"))
    assert cfg.in_maintenance_window(ny)
    assert cfg.in_maintenance_window(ny.astimezone(ZoneInfo("Asia/Tokyo")))
    with pytest.raises(ValueError):
        cfg.in_maintenance_window(datetime(2024, 6, 7, 2, 30))


@settings(max_examples=80, deadline=None)
@given(
    days=st.lists(st.sampled_from(C.WEEKDAYS), unique=True),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    duration=st.integers(1, 1440),
    tzname=st.sampled_from(["UTC", "Asia/Kolkata", "Etc/GMT+5", "Asia/Kathmandu"]),
    now=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)
def test_window_matches_a_brute_force_oracle(
    days: list[str], hour: int, minute: int, duration: int, tzname: str, now: datetime
) -> None:
    """In zones without DST: inside iff the window opened within the last `duration` minutes."""
    cfg = win(days=days, start=f"{hour:02d}:{minute:02d}", duration_min=duration, timezone=tzname)
    tz = ZoneInfo(tzname)
    floor = now.replace(second=0, microsecond=0)
    oracle = False
    for k in range(duration):
        local = (floor - timedelta(minutes=k)).astimezone(tz)
        if (local.hour, local.minute) == (hour, minute) and C.WEEKDAYS[local.weekday()] in days:
            oracle = True
            break
    assert cfg.in_maintenance_window(now) is oracle


# --- jitter ---------------------------------------------------------------------------------


def test_jitter_default_is_ten_percent_not_a_fraction() -> None:
    cfg = make()
    rng = random.Random(42)
    draws = [cfg.jittered_interval(rng) for _ in range(5000)]
    assert min(draws) >= 54.0 and max(draws) <= 66.0
    # it really spreads over the band (a constant or a fraction-sized jitter fails this)
    assert min(draws) < 55.0 and max(draws) > 65.0
    assert 59.0 < sum(draws) / len(draws) < 61.0


def test_jitter_zero_is_exact_and_base_override() -> None:
    assert make(agent={"jitter_pct": 0}).jittered_interval(random.Random(1)) == 60.0
    cfg = make(agent={"jitter_pct": 50})
    v = cfg.jittered_interval(random.Random(1), base=10)
    assert 5.0 <= v <= 15.0
    assert cfg.jittered_interval(random.Random(1), base=-3) == 0.0
    assert 27.0 <= make().jittered_interval(base=30) <= 33.0  # default rng


class _Extreme:
    """An rng that returns the ends of [0, 1)."""

    def __init__(self, x: float) -> None:
        self.x = x

    def random(self) -> float:
        return self.x


@settings(max_examples=100)
@given(
    interval=st.integers(5, 86400),
    pct=st.integers(0, 50),
    seed=st.integers(0, 2**32),
    r=st.sampled_from([0.0, 0.5, 1.0 - 2**-53]),
)
def test_jitter_bounds_property(interval: int, pct: int, seed: int, r: float) -> None:
    cfg = make(agent={"checkin_interval_s": interval, "jitter_pct": pct})
    lo, hi = interval * (1 - pct / 100), interval * (1 + pct / 100)
    rng = random.Random(seed)
    for v in [cfg.jittered_interval(rng) for _ in range(50)] + [
        cfg.jittered_interval(_Extreme(r))  # type: ignore[arg-type]
    ]:
        assert lo <= v <= hi
        assert v > 0


# --- docs -------------------------------------------------------------------------------------


def test_docs_file_is_in_sync() -> None:
    path = REPO / "docs" / "agent-config.md"
    assert path.read_text(encoding="utf-8") == render_docs(), (
        "regenerate: python -m osiris_agent.config --docs > docs/agent-config.md"
    )


def test_docs_describe_every_key_and_their_example_loads() -> None:
    text = render_docs()
    for section in C.SECTIONS:
        assert f"## `[{section}]`" in text
    for opt in C.OPTIONS:
        assert f"| `{opt.name}` |" in text, opt.key
    assert "| `jitter_pct` | integer 0..50 | `10` |" in text
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert AgentConfig.from_dict(tomllib.loads(example)).server.url.startswith("https://")


def test_main_docs_and_schema(capsys) -> None:
    assert C.main(["--docs"]) == 0
    assert capsys.readouterr().out == render_docs()
    assert C.main([]) == 2
    rows = {r["key"]: r for r in C.schema()}
    assert set(rows) == {o.key for o in C.OPTIONS}
    assert rows["server.url"]["required"] is True
    assert rows["agent.jitter_pct"] == {
        "key": "agent.jitter_pct",
        "type": "int",
        "required": False,
        "default": 10,
        "min": 0,
        "max": 50,
        "choices": None,
        "description": rows["agent.jitter_pct"]["description"],
    }
    assert rows["agent.key_file"]["default"] == {
        "derived_from": "agent.state_dir",
        "name": "appliance.key",
    }


# --- drift-scan cadence ---------------------------------------------------------------------


def test_scan_interval_unset_by_default_and_bounded() -> None:
    assert make().agent.scan_interval_s is None
    assert "scan_interval_s" not in make().to_dict().get("agent", {})
    assert make(agent={"scan_interval_s": 60}).agent.scan_interval_s == 60
    e = error_for({"server": {"url": URL}, "agent": {"scan_interval_s": 59}})
    assert e.key == "agent.scan_interval_s" and "agent.lab" in e.why
    lab = make(agent={"scan_interval_s": 5, "lab": True})
    assert lab.agent.scan_interval_s == 5
    e = error_for({"server": {"url": URL}, "agent": {"scan_interval_s": 4, "lab": True}})
    assert e.key == "agent.scan_interval_s" and "between 5 and 86400" in e.why
    e = error_for({"server": {"url": URL}, "agent": {"scan_interval_s": "60"}})
    assert e.key == "agent.scan_interval_s"
    again = AgentConfig.from_dict(tomllib.loads(to_toml(lab)))
    assert again == lab
