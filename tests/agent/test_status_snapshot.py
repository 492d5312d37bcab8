"""The technician's console on the box reads only the agent's ``status.json`` snapshot.

Against the REAL osiris-server: the snapshot is written after every cycle, mode 0640, from the
whitelist alone (no token, no key seed, no credential); it says when the server was last
reached and goes stale visibly; and — as two real Unix users, the agent's and the technician's —
the console sees the status while every secret in the state dir stays unreadable to it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from osiris_agent import status_snapshot
from osiris_core.keys import load_private_key
from osiris_tui import local
from tests.e2e.conftest import Central, enroll_agent, seed_site

ROOT = Path(__file__).resolve().parents[2]


def _walk(value: object, path: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [(path, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _walk(v, f"{path}[{i}]")
    return out


def _secrets(state: Path) -> list[str]:
    """Every secret the state dir holds, as text that must never appear in the snapshot."""
    token = (state / "token").read_text().strip()
    seeds = [load_private_key(state / n).skey for n in ("appliance.key", "cosign.key")]
    return [token, *seeds, *(s.split("+", 4)[4] for s in seeds)]


def test_snapshot_after_a_cycle_is_the_whitelist_and_holds_no_secret(central: Central, tmp_path):
    site = seed_site(central)
    status_dir = tmp_path / "status"
    agent = enroll_agent(central, site, tmp_path / "state",
                         extra_toml=f'[agent]\nstatus_dir = "{status_dir}"\n')  # fmt: skip
    try:
        agent.record(host_id=agent.appliance_id, check="timesync", outcome="compliant",
                     action_taken="snapshot test")  # fmt: skip
        agent.cycle()
    finally:
        agent.close()
    snap = status_dir / status_snapshot.NAME
    assert stat.S_IMODE(snap.stat().st_mode) == 0o640
    doc = json.loads(snap.read_text())
    assert tuple(sorted(doc)) == tuple(sorted(status_snapshot.FIELDS))
    assert doc["appliance_id"] == site.appliance_id and doc["last_attempt_ok"] is True
    text = snap.read_text()
    for secret in _secrets(tmp_path / "state"):
        assert secret not in text
    suspicious = ("secret", "token", "password", "credential", "seed", "skey", "claim")
    for where, _ in _walk(doc):
        leaf = where.rsplit(".", 1)[-1].lower()
        assert not any(w in leaf for w in suspicious), where
    st = local.read_state(status_dir)
    assert st.snapshot and st.appliance_id == site.appliance_id
    assert st.last_checkin == doc["last_reached_at"] is not None
    assert st.chain_seq == doc["chain_seq"] >= 1
    assert [e.seq for e in st.evidence] == [e["seq"] for e in doc["evidence"]]
    assert local.envelope(status_dir, st.chain_seq) is None  # envelopes stay in state.db
    with pytest.raises(local.LocalStateError, match="cannot ask for a cycle"):
        local.request_run(status_dir)


def test_unreachable_server_keeps_last_reached_and_a_stale_snapshot_says_so(
    central: Central, tmp_path: Path
) -> None:
    site = seed_site(central)
    status_dir = tmp_path / "status"
    agent = enroll_agent(central, site, tmp_path / "state",
                         extra_toml=f'[agent]\nstatus_dir = "{status_dir}"\n')  # fmt: skip
    try:
        agent.cycle()
        reached = json.loads((status_dir / "status.json").read_text())["last_reached_at"]
        central.stop()
        agent.cycle()
    finally:
        agent.close()
    doc = json.loads((status_dir / "status.json").read_text())
    assert doc["last_attempt_ok"] is False and doc["last_error"]
    assert doc["last_reached_at"] == reached  # never "reached" from a failed attempt
    st = local.read_state(status_dir)
    assert st.server_reachable is False and not local.is_stale(st)
    later = time.time() + 3600
    assert local.is_stale(st, now=later)
    assert local.snapshot_age_s(st, now=later) >= 3590


def test_console_refuses_what_is_not_a_snapshot(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text('{"schema": "something else"}')
    with pytest.raises(local.LocalStateError, match="not an Osiris status snapshot"):
        local.read_state(tmp_path)
    (tmp_path / "status.json").write_text("{half")
    with pytest.raises(local.LocalStateError, match="not JSON"):
        local.read_state(tmp_path)


def test_remote_text_reaches_the_snapshot_without_control_characters() -> None:
    hostile = "ok\x1b]0;pwned\x07\x1b[2J" + "x" * 1000
    out = status_snapshot.clean({"observed": hostile, "n": [hostile]})
    flat = json.dumps(out)
    assert "\x1b" not in out["observed"] and "\x07" not in out["observed"]
    assert len(out["observed"]) <= status_snapshot.MAX_TEXT and "\\u001b" not in flat


# --- two real users: the agent's and the technician's ------------------------------------


def _user(name: str, group: str | None = None) -> int:
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    if group:
        cmd += ["--groups", group]
    subprocess.run([*cmd, name], check=True, capture_output=True)
    return int(subprocess.run(["id", "-u", name], check=True, capture_output=True,
                              text=True).stdout)  # fmt: skip


DROP = """
import os, pwd, sys
pw = pwd.getpwnam(sys.argv.pop(1))
os.setgroups(os.getgrouplist(pw.pw_name, pw.pw_gid))
os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
os.setresuid(pw.pw_uid, pw.pw_uid, 0)  # the saved id only lets imports read the code
UID = pw.pw_uid


class _Root:
    # Python's own code and ours live where the user cannot read (/root, a 0700 clone): the
    # one thing done as root is reading a module; every other file access is the user's.
    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*a, **k):
            os.seteuid(0)
            try:
                out = attr(*a, **k)
            finally:
                os.seteuid(UID)
            if name == "find_spec" and out is not None and out.loader is not None:
                out.loader = _Root(out.loader)
            return out

        return call


sys.meta_path[:] = [_Root(f) for f in sys.meta_path]
os.umask(0o077)  # the agent unit's umask
assert os.geteuid() == UID and os.getuid() == UID
"""


def _as(user: str, imports: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run python ``code`` as ``user`` with its own groups (real and effective uid and gid,
    supplementary groups). The interpreter and the clone may sit where the user cannot read
    (/root 0700, a mktemp clone), so only reading a module is done as root (``DROP``)."""
    return subprocess.run(
        [sys.executable, "-c", imports + DROP + code, user, *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": "/tmp"},
    )  # fmt: skip


AGENT_IMPORTS = """
import importlib.metadata, json, sqlite3, ssl, http.client, email, sys
import osiris_agent.cycle, osiris_agent.status_snapshot, osiris_agent.config
import tests.agent.fixtures_agent
from osiris_core.catalog.loader import check_aliases, load_catalog
load_catalog(); check_aliases()  # package data, cached per process: read before the drop
"""
CONSOLE_IMPORTS = """
import json, sys, pathlib, osiris_tui.local, osiris_core.canonical
"""


AGENT_CYCLE = """
import sys
from osiris_agent.config import load_config
from osiris_agent.cycle import Agent
from tests.agent.fixtures_agent import good_clock
a = Agent(load_config(sys.argv[1]), measure_clock=good_clock, scan_self=False, scan_interval_s=0)
try:
    a.record(host_id=a.appliance_id, check="timesync", outcome="compliant", action_taken="2 users")
    r = a.cycle()
    assert r.reachable, r.errors
finally:
    a.close()
"""

CONSOLE = """
import json, sys
from pathlib import Path
from osiris_tui.local import read_state
st = read_state(sys.argv[1])
denied = []
for name in ("state.db", "appliance.key", "cosign.key", "token", "pins.json", "agent.toml"):
    try:
        (Path(sys.argv[2]) / name).read_bytes()
    except PermissionError:
        denied.append(name)
print(json.dumps({"appliance": st.appliance_id, "seq": st.chain_seq,
                  "reached": st.last_checkin, "denied": denied}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                    reason="needs root and useradd: runs as two real users")  # fmt: skip
def test_agent_and_technician_as_two_users(central: Central) -> None:
    tag = os.urandom(3).hex()
    agent_user, tech, group = f"osag{tag}", f"ostc{tag}", f"ostg{tag}"
    base = Path(tempfile.mkdtemp(prefix="osiris-2users-"))
    os.chmod(base, 0o755)
    subprocess.run(["groupadd", "--system", group], check=True, capture_output=True)
    try:
        uid = _user(agent_user)
        _user(tech, group)
        gid = int(subprocess.run(["getent", "group", group], check=True, capture_output=True,
                                 text=True).stdout.split(":")[2])  # fmt: skip
        state, status_dir = base / "state", base / "status"
        status_dir.mkdir()
        os.chown(status_dir, uid, gid)
        os.chmod(status_dir, 0o2750)  # what the NixOS module's tmpfiles rule makes
        site = seed_site(central)
        agent = enroll_agent(central, site, state,
                             extra_toml=f'[agent]\nstatus_dir = "{status_dir}"\n')  # fmt: skip
        agent.close()
        for p in [state, *state.rglob("*")]:
            os.chown(p, uid, uid)
        os.chmod(state, 0o700)
        ran = _as(agent_user, AGENT_IMPORTS, AGENT_CYCLE, str(state / "agent.toml"))
        assert ran.returncode == 0, ran.stderr[-800:]
        snap = status_dir / "status.json"
        assert (snap.stat().st_uid, snap.stat().st_gid) == (uid, gid)  # setgid dir: tech's group
        assert stat.S_IMODE(snap.stat().st_mode) == 0o640
        seen = _as(tech, CONSOLE_IMPORTS, CONSOLE, str(status_dir), str(state))
        assert seen.returncode == 0, seen.stderr[-800:]
        view = json.loads(seen.stdout)
        assert view["appliance"] == site.appliance_id and view["seq"] >= 1 and view["reached"]
        assert sorted(view["denied"]) == sorted(
            ["state.db", "appliance.key", "cosign.key", "token", "pins.json", "agent.toml"]
        )
        # and the technician cannot read the state dir itself through the console either
        direct = _as(tech, CONSOLE_IMPORTS, "import sys; from osiris_tui.local import read_state; "
                           "read_state(sys.argv[1])", str(state))  # fmt: skip
        assert direct.returncode != 0
    finally:
        for u in (agent_user, tech):
            subprocess.run(["userdel", u], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
