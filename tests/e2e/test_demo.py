"""`osiris demo`: the whole system on loopback, run for real as a subprocess.

The headless run starts the real server, the lab farm and three real agents, injects drift on a
schedule, and prints a JSON summary. The test then checks every number it can against sources the
demo does not control: the server's own API (restarted on the demo's data dir afterwards) and an
offline verification of evidence the test pulls itself. It also checks that no process the demo
started survives it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from osiris_core.verify import verify_export
from osiris_tui.client import Client
from osiris_tui.pull import pull_export

ROOT = Path(__file__).resolve().parents[2]
OSIRIS = [sys.executable, "-m", "osiris_tui.cli"]


def _procs_mentioning(text: str) -> list[str]:
    """Every live process whose command line mentions ``text`` (e.g. the demo's data dir)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd:
            out.append(f"{pid}: {cmd[:160]}")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def headless(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data = tmp_path_factory.mktemp("demo") / "data"
    r = subprocess.run(
        [*OSIRIS, "demo", "--headless", "--seconds", "45", "--json", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    # Looked at at once, before any test restarts the server on the same data dir.
    survivors = _procs_mentioning(str(data))
    return {
        "rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr, "data": data,
        "survivors": survivors,
    }  # fmt: skip


@pytest.fixture(scope="module")
def restarted(headless: dict) -> Iterator[Client]:
    """The demo's server, started again on its data dir: the API the summary must agree with."""
    data: Path = headless["data"]
    token = json.loads((data / "demo.json").read_text())["admin_token"]
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "osiris_server.cli", "serve", "--data", str(data / "server"),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "restarted server never answered"
        time.sleep(0.1)
    client = Client(url, token)
    try:
        yield client
    finally:
        client.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def _summary(headless: dict) -> dict:
    assert headless["rc"] == 0, headless["stderr"][-3000:] + headless["stdout"][-2000:]
    return json.loads(headless["stdout"])


def test_headless_run_succeeds_and_heals(headless: dict) -> None:
    s = _summary(headless)
    assert s["ok"] is True
    assert s["appliances"] == 3 and s["sites"] == 3
    assert s["chaos_injected"] == 6
    # Every injected fault is drift a detect script sees; each one must have been found.
    assert s["drifts_found"] >= s["chaos_injected"]
    # The agents heal through L1: at least some of the injected drift is healed within the run,
    # and a heal never outnumbers what was injected.
    assert 1 <= s["healed"] <= s["chaos_injected"]
    assert s["checks_run"] > 0 and s["lab_detects"] > 0
    assert s["lost"] == 0 and s["queued"] == 0
    assert s["receipts_verified"] == s["bundles"] == s["bundles_pulled"] > 0
    # the run ends with one clinic's packet verified against that clinic's attestation
    pk = s["packet"]
    assert pk["ok"] is True and pk["bundles"] > 0 and pk["findings"] == []
    assert pk["trusted"] == [str(headless["data"] / "attestations" / f"{pk['site']}.json")]
    assert Path(pk["path"]).is_file()
    assert "stopping every demo process" in headless["stderr"]
    assert str(headless["data"]) in headless["stderr"]  # says where the data lives


def test_summary_matches_the_servers_own_api(headless: dict, restarted: Client) -> None:
    s = _summary(headless)
    sites = [x.id for x in restarted.sites()]
    assert sorted(sites) == ["hilltop", "northside", "riverside"]
    apps = restarted.appliances()
    assert len(apps) == s["appliances"]
    rows = []
    for site in sites:
        rows += restarted.evidence(site, limit=1000)["evidence"]
    assert len(rows) == s["bundles"]
    outcomes = Counter(r["outcome"] for r in rows)
    assert outcomes["healed"] == s["healed"]
    assert outcomes["deferred"] == s["deferred"]
    assert outcomes["escalated"] == s["escalated"]
    drifts = sum(
        1
        for r in rows
        if r["outcome"] == "alert"
        and r["envelope"]["bundle"]["tier"] == "monitor"
        and r["check"] != "evidence_pipeline"
    )
    assert drifts == s["drifts_found"]
    # Nothing lost: each appliance's chain on the server is 1..N without a gap.
    by_app: dict[str, list[int]] = {}
    for r in rows:
        by_app.setdefault(r["appliance_id"], []).append(r["seq"])
    assert set(by_app) == {a.id for a in apps}
    for seqs in by_app.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
    # Healed bundles are L1 heals of the runbooks the chaos broke.
    healed_rbs = {r["envelope"]["bundle"]["runbook_id"] for r in rows if r["outcome"] == "healed"}
    assert healed_rbs <= {
        "RB-WIN-FIREWALL-001",
        "RB-WIN-SEC-006",
        "RB-WIN-SVC-003",
        "RB-WIN-SEC-002",
        "RB-WIN-SVC-001",
    }


def test_pulled_evidence_verifies_offline(headless: dict, restarted: Client, tmp_path) -> None:
    s = _summary(headless)
    verified = 0
    total = 0
    for site in ("northside", "riverside", "hilltop"):
        out = tmp_path / site
        total += pull_export(restarted, site, out, latest=True)
        report = verify_export(out)
        assert report.ok(), [f.line() for f in report.failures]
        verified += report.passed.get("E_INCLUSION", 0)
    assert verified == total == s["receipts_verified"]


def test_no_demo_process_survives(headless: dict) -> None:
    _summary(headless)
    assert headless["survivors"] == []
    state = json.loads((headless["data"] / "demo.json").read_text())
    for pid in state["pids"].values():  # cleared on a clean stop; any left must be dead
        assert not Path(f"/proc/{pid}").exists()


def test_chaos_without_a_running_demo_is_a_clear_error(tmp_path) -> None:
    r = subprocess.run(
        [*OSIRIS, "demo", "chaos", "--host", "dc01", "--fault", "firewall_off",
         "--data", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.startswith("osiris: error: no demo data in")
    assert "Traceback" not in r.stderr


def test_refuses_to_wipe_a_dir_that_is_not_a_demo(tmp_path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    r = subprocess.run(
        [*OSIRIS, "demo", "--headless", "--seconds", "10", "--data", str(precious)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 1
    assert "is not a demo data dir" in r.stderr
    assert (precious / "keep.txt").read_text() == "mine"


def test_farm_control_endpoint(tmp_path) -> None:
    """The lab farm alone: a token-guarded chaos endpoint that really drifts the host model."""
    ready = tmp_path / "farm.json"
    spec = {
        "hosts": [
            {"site": "a", "host": "dc01", "role": "dc", "username": "u", "password": "p"},
            {"site": "b", "host": "dc01", "role": "dc", "username": "u", "password": "p"},
            {"site": "a", "host": "fs01", "role": "fs", "username": "u", "password": "p"},
        ],
        "ntp_servers": 1,
        "workdir": str(tmp_path),
        "ready_file": str(ready),
        "control_token": "t0ken",
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [sys.executable, "-m", "osiris_lab.farm", "--spec", str(tmp_path / "spec.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert oct(ready.stat().st_mode & 0o777) == "0o600"
        url = info["control_url"]
        auth = {"Authorization": "Bearer t0ken"}
        assert httpx.get(url + "/hosts").status_code == 401
        hosts = httpx.get(url + "/hosts", headers=auth).json()["hosts"]
        assert all(h["drifting"] == [] for h in hosts)  # a healthy baseline
        r = httpx.post(url + "/chaos", json={"host": "dc01", "fault": "firewall_off"}, headers=auth)
        assert r.status_code == 404 and "several sites" in r.json()["error"]["message"]
        r = httpx.post(
            url + "/chaos", json={"site": "b", "host": "dc01", "fault": "firewall_off"},
            headers=auth,
        )  # fmt: skip
        assert r.status_code == 200 and r.json()["drifting"] == ["RB-WIN-FIREWALL-001"]
        r = httpx.post(url + "/chaos", json={"host": "fs01", "fault": "nope"}, headers=auth)
        assert r.status_code == 400 and "unknown lab fault" in r.json()["error"]["message"]
        hosts = {(h["site"], h["host"]): h for h in httpx.get(url + "/hosts", headers=auth).json()
                 ["hosts"]}  # fmt: skip
        assert hosts[("b", "dc01")]["injected"] == ["firewall_off"]
        assert hosts[("a", "dc01")]["drifting"] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
