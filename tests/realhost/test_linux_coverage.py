"""LIN-AV-001, LIN-EDR-001, LIN-BACKUP-001, LIN-LUKS-001 and LIN-TIME-001 on a REAL Debian 12
host (systemd PID 1 in systemd-nspawn), over the agent's own SSH transport, executor and engine.

One host for the module (booting costs seconds; each test leaves the host as the next one
expects, in file order). What is real and what is not, per runbook:

* TIME — real chrony 4.3 and real ``chronyc``. The host is configured the way chrony runs in a
  container (``-x``: never touch the clock, which is not namespaced; Debian's unit condition
  ``ConditionCapability=CAP_SYS_TIME`` reset so the unit may start), and it synchronises to a
  minimal NTP server on the test's own veth address (``sntp_server.py``; the host has no route
  to a public source). The offset chrony measures is real; the out-of-bound case makes that
  server answer 3 s fast, and chrony (``-x``) cannot slew it away.
* AV — real ClamAV 1.4 units (``clamav-daemon``, ``clamav-freshclam``). There is no internet, so
  freshclam cannot fetch signatures, and a signature database cannot be faked: clamd verifies
  each database's signed ``.info`` (a planted ``daily.cld`` in the real CVD header format is
  refused, "Malformed database"). So this proves the honest side: drift detected, freshclam
  really started, clamd's failure to start never claimed as healed, the database never touched,
  and the age read from the header's build time (the planted file's header, not its mtime).
* EDR — none is installed: the honest drift with ``clamav_present``. The fake ``mdatp`` (a shell
  script and a ``sleep`` unit) proves the presence/running logic only, not the product.
* BACKUP — real systemd services named like restic/borg jobs that run ``true``/``false`` give
  real ``ExecMainStatus``/``ExecMainExitTimestamp``; rsnapshot's log lines are written in the
  format rsnapshot 1.4.5 (Debian 12) writes (``[YYYY-MM-DDTHH:MM:SS] … completed successfully``),
  rsnapshot itself is not run. Veeam is proven by the parser test only (tests/core).
* LUKS — a container sees no block device under its root: the honest ``error``, never compliant.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from osiris_agent.healing.engine import Finding, HealingEngine, Policy
from osiris_agent.healing.executor import Executor
from osiris_agent.hosts.ssh import SshTransport
from osiris_core import canonical
from osiris_core.catalog import load_catalog
from osiris_core.evidence import Chain
from osiris_lab.debian_host import DebianHost, DebianRoot, HostUnavailable
from tests.realhost.sntp_server import SntpServer

pytestmark = pytest.mark.realhost
CAT = load_catalog()


class Sinks:
    """The engine's evidence (each bundle validated and chained) and incident sinks."""

    def __init__(self) -> None:
        self.chain = Chain("app-1")
        self.bundles: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> str:
        b = self.chain.next(site_id="site-1", **fields)
        self.bundles.append(b)
        return self.chain.advance(b)

    def raise_incident(self, **kw: Any) -> None:
        self.incidents.append(kw)

    def outcomes(self) -> list[tuple[str, str, str | None]]:
        return [(b["outcome"], b["tier"], b["runbook_id"]) for b in self.bundles]


@pytest.fixture(scope="module")
def host(debian_root: DebianRoot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DebianHost]:
    """One booted host for the module (the conftest's root; the same skip/fail rule)."""
    try:
        h = DebianHost.boot(
            debian_root, tmp_path_factory.mktemp("coverage"), f"k3c{os.getpid() % 10000}"
        )
    except HostUnavailable as exc:
        if os.environ.get("OSIRIS_REQUIRE_REALHOST") == "1":
            pytest.fail(f"OSIRIS_REQUIRE_REALHOST=1 and {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def ntp(host: DebianHost) -> Iterator[SntpServer]:
    srv = SntpServer(host.host_side).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def tr(host: DebianHost) -> Iterator[SshTransport]:
    t = SshTransport(host.target())
    try:
        yield t
    finally:
        t.close()


def sh(host: DebianHost, cmd: str) -> str:
    r = host.exec(cmd, timeout=120)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r.stdout


def detect(tr: SshTransport, rid: str, params: dict | None = None) -> Finding:
    pr = Executor(CAT, lambda h: tr).run_phase("deb-1", CAT.runbook(rid), "detect", params)
    return Finding(
        "deb-1", CAT.runbook(rid).check, rid, pr.status, pr.observed, pr.expected,
        canonical.utc_now(), pr.error,
    )  # fmt: skip


def heal(tr: SshTransport, f: Finding, policy: Policy | None = None) -> Sinks:
    sinks = Sinks()
    HealingEngine(CAT, lambda h: tr, sinks, sinks, lambda: datetime.now(UTC)).handle(
        f, policy or Policy.default(CAT)
    )
    return sinks


# ------------------------------------------------------------------------------------- TIME


def test_time_chrony_stopped_is_drift_and_is_healed_by_starting_it(
    host: DebianHost, ntp: SntpServer, tr: SshTransport
) -> None:
    sh(
        host,
        f"""mkdir -p /etc/systemd/system/chrony.service.d
printf '[Unit]\\nConditionCapability=\\n' > /etc/systemd/system/chrony.service.d/container.conf
echo 'DAEMON_OPTS="-F 1 -x"' > /etc/default/chrony
sed -i 's/^pool /#pool /' /etc/chrony/chrony.conf
echo 'server {host.host_side} iburst minpoll 0 maxpoll 1' > /etc/chrony/sources.d/lab.sources
systemctl daemon-reload; systemctl stop chrony""",
    )
    clock_before = time.time()
    f = detect(tr, "LIN-TIME-001")
    assert f.status == "drift" and f.observed["service_active"] is False, f
    sinks = heal(tr, f)
    assert sinks.outcomes() == [("healed", "L1", "LIN-TIME-001")], sinks.bundles
    post = sinks.bundles[0]["post_state"]["observed"]
    assert post["synchronised"] is True and post["source"] == host.host_side
    assert 0 <= post["offset_ms"] <= 100
    assert ntp.requests > 0  # chrony really asked our server
    assert sh(host, "systemctl is-active chrony").strip() == "active"
    # the clock was never set: the host's clock is ours, and it still runs forward from it
    assert abs(float(sh(host, "date +%s.%N")) - time.time()) < 2 and time.time() >= clock_before


def test_time_offset_beyond_the_bound_escalates_and_the_clock_is_not_touched(
    host: DebianHost, ntp: SntpServer, tr: SshTransport
) -> None:
    ntp.offset = 3.0  # the source now says our clock is 3 s slow; chrony (-x) cannot fix it
    sh(host, "systemctl restart chrony && chronyc waitsync 15 0 0 2 >/dev/null")
    line = sh(host, "chronyc -n -c tracking")
    assert line.strip().endswith(",Normal"), line
    try:
        f = detect(tr, "LIN-TIME-001")
        assert f.status == "drift", f
        assert f.observed["synchronised"] is True and f.observed["offset_ms"] >= 2500, f
        # a looser (still bounded) policy would accept 1 s at most: still drift
        assert detect(tr, "LIN-TIME-001", {"max_offset_ms": 1000}).status == "drift"
        sinks = heal(tr, f)
        assert sinks.outcomes() == [("escalated", "L3", "LIN-TIME-001")], sinks.bundles
        assert sinks.incidents, "an escalation raises an incident"
        assert abs(float(sh(host, "date +%s.%N")) - time.time()) < 2  # never stepped
    finally:
        ntp.offset = 0.0
        sh(host, "systemctl restart chrony && chronyc waitsync 15 0 0 2 >/dev/null")
    assert detect(tr, "LIN-TIME-001").status == "compliant"


# --------------------------------------------------------------------------------------- AV


def _clamav_db(stime: int, name: str) -> bytes:
    """A database file in the real CVD/CLD layout: a 512-byte "ClamAV-VDB:" header whose last
    field is the build time, then a tar of one hash signature. Not loadable: it has no signed
    .info, which clamd demands (and the test shows it refuses the file)."""
    eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    sig = f"{hashlib.md5(eicar).hexdigest()}:{len(eicar)}:Osiris.Test.{name}\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        ti = tarfile.TarInfo(f"{name}.hdb")
        ti.size, ti.mtime = len(sig), stime
        t.addfile(ti, io.BytesIO(sig))
    date = time.strftime("%d %b %Y %H-%M +0000", time.gmtime(stime))
    head = f"ClamAV-VDB:{date}:1:1:90:X:X:osiris-test:{stime}".encode().ljust(512, b" ")
    return head + buf.getvalue()


def _db_state(host: DebianHost) -> str:
    return sh(host, "cd /var/lib/clamav && find . -name '*.c[vl]d' -printf '%p %s %T@\\n' "
                    "-exec sha256sum {} + | sort")  # fmt: skip


def test_av_without_signatures_starts_freshclam_and_never_claims_clamd(
    host: DebianHost, tr: SshTransport
) -> None:
    f = detect(tr, "LIN-AV-001")
    assert f.status == "drift", f
    assert f.observed["signature_state"] == "missing" and f.observed["daemon_active"] is False
    sinks = heal(tr, f)
    assert sinks.outcomes()[0] == ("failed", "L1", "LIN-AV-001"), sinks.bundles
    assert sinks.outcomes()[-1] == ("escalated", "L3", "LIN-AV-001")
    assert "healed" not in [o for o, _, _ in sinks.outcomes()]
    # freshclam really runs (and really cannot reach its mirror); clamd's unit condition wants a
    # database, so it does not run — and nothing was planted to make it
    assert sh(host, "systemctl is-active clamav-freshclam").strip() == "active"
    assert host.exec("systemctl is-active clamav-daemon").stdout.strip() != "active"
    assert _db_state(host) == ""


def test_av_stale_signatures_are_read_from_the_header_and_never_touched(
    host: DebianHost, tr: SshTransport
) -> None:
    ten_days_ago = int(time.time()) - 10 * 86400
    for name in ("main", "daily"):
        (host.root / f"var/lib/clamav/{name}.cld").write_bytes(_clamav_db(ten_days_ago, name))
    sh(host, "chown clamav:clamav /var/lib/clamav/*.cld; touch /var/lib/clamav/daily.cld")
    f = detect(tr, "LIN-AV-001")
    # the file was just touched; the age is the header's build time
    assert f.observed["signature_state"] == "stale" and f.observed["signature_db"] == "daily.cld"
    assert 239 <= f.observed["signature_age_hours"] <= 241, f
    before = _db_state(host)
    sinks = heal(tr, f)
    assert "healed" not in [o for o, _, _ in sinks.outcomes()], sinks.bundles
    assert sinks.outcomes()[-1] == ("escalated", "L3", "LIN-AV-001")
    assert _db_state(host) == before  # never deleted, replaced or touched
    log = sh(host, "journalctl -u clamav-daemon --no-pager | tail -n 20")
    assert "Malformed database" in log  # clamd refuses a database it cannot verify


def test_av_database_from_the_future_escalates_without_running_anything(
    host: DebianHost, tr: SshTransport
) -> None:
    (host.root / "var/lib/clamav/daily.cld").write_bytes(
        _clamav_db(int(time.time()) + 3 * 86400, "daily")
    )
    sh(host, "systemctl stop clamav-freshclam")
    f = detect(tr, "LIN-AV-001")
    assert f.observed["signature_state"] == "future", f
    sinks = heal(tr, f)
    assert sinks.outcomes() == [("escalated", "L3", "LIN-AV-001")], sinks.bundles
    assert host.exec("systemctl is-active clamav-freshclam").stdout.strip() != "active"
    sh(host, "rm -f /var/lib/clamav/*.cld; systemctl start clamav-freshclam")


# -------------------------------------------------------------------------------------- EDR


def test_edr_none_installed_is_honest_drift_and_escalates(tr: SshTransport) -> None:
    f = detect(tr, "LIN-EDR-001")
    assert f.status == "drift"
    assert f.observed == {"agents_found": [], "running": [], "expected": "any",
                          "clamav_present": True}  # fmt: skip
    sinks = heal(tr, f)
    assert sinks.outcomes() == [("escalated", "L3", "LIN-EDR-001")]


def test_edr_presence_and_running_logic_with_a_stand_in_mdatp(
    host: DebianHost, tr: SshTransport
) -> None:
    """A STAND-IN mdatp (a script at the vendor's path and a ``sleep`` unit named mdatp): this
    proves how the runbook reads presence and running, not Defender for Endpoint itself."""
    sh(
        host,
        """printf '#!/bin/sh\\necho stand-in\\n' > /usr/bin/mdatp; chmod 755 /usr/bin/mdatp
printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/mdatp.service
systemctl daemon-reload""",
    )
    f = detect(tr, "LIN-EDR-001")
    assert f.status == "drift" and f.observed["agents_found"] == ["mdatp"], f
    assert f.observed["running"] == []
    sh(host, "systemctl start mdatp")
    assert detect(tr, "LIN-EDR-001").status == "compliant"
    assert detect(tr, "LIN-EDR-001", {"expected": "mdatp"}).status == "compliant"
    assert detect(tr, "LIN-EDR-001", {"expected": "falcon"}).status == "drift"
    sh(host, "systemctl stop mdatp; rm -f /usr/bin/mdatp /etc/systemd/system/mdatp.service; "
             "systemctl daemon-reload")  # fmt: skip


# ----------------------------------------------------------------------------------- BACKUP


def _unit(host: DebianHost, name: str, command: str) -> None:
    unit = f"/etc/systemd/system/{name}"
    sh(host, f"printf '[Service]\\nType=oneshot\\nExecStart={command}\\n' > {unit}.service")
    sh(host, f"printf '[Timer]\\nOnCalendar=daily\\n[Install]\\nWantedBy=timers.target\\n' "
             f"> {unit}.timer")  # fmt: skip
    sh(host, f"systemctl daemon-reload; systemctl enable {name}.timer")


def test_backup_nothing_found_is_drift_not_compliant(tr: SshTransport) -> None:
    f = detect(tr, "LIN-BACKUP-001")
    assert f.status == "drift" and f.observed["sources"] == [], f
    assert heal(tr, f).outcomes() == [("escalated", "L3", "LIN-BACKUP-001")]


def test_backup_reads_real_systemd_results_and_rsnapshot_logs(
    host: DebianHost, tr: SshTransport
) -> None:
    _unit(host, "restic-backup", "/bin/true")
    f = detect(tr, "LIN-BACKUP-001")
    # a job that has not run since boot has no result systemd can give: not fresh
    assert f.observed["stale"] == ["systemd:restic-backup.service"], f
    sh(host, "systemctl start restic-backup.service")
    ok = detect(tr, "LIN-BACKUP-001")
    assert ok.status == "compliant", ok
    assert ok.observed["sources"] == ["systemd:restic-backup.service"]
    assert ok.observed["oldest_success_age_hours"] == 0

    _unit(host, "borg-backup", "/bin/false")
    host.exec("systemctl start borg-backup.service")  # fails, for real
    assert sh(host, "systemctl show -p ExecMainStatus --value borg-backup").strip() == "1"
    bad = detect(tr, "LIN-BACKUP-001")
    assert bad.status == "drift" and bad.observed["stale"] == ["systemd:borg-backup.service"]
    sinks = heal(tr, bad)
    assert sinks.outcomes() == [("escalated", "L3", "LIN-BACKUP-001")]
    sh(host, "systemctl disable borg-backup.timer; rm /etc/systemd/system/borg-backup.*; "
             "systemctl daemon-reload; systemctl reset-failed")  # fmt: skip

    def stamp(hours_ago: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - hours_ago * 3600))

    conf = "config_version\\t1.2\\nsnapshot_root\\t/var/cache/rsnapshot/\\n"
    sh(host, f"printf '{conf}logfile\\t/var/log/rsnapshot.log\\n' > /etc/rsnapshot.conf")
    log = "".join(
        f"[{stamp(hours)}] /usr/bin/rsnapshot daily: {what}\n"
        for hours, what in ((30, "started"), (30, "completed successfully"), (2, "started"),
                            (2, "completed, but with some errors"))
    )  # fmt: skip
    (host.root / "var/log/rsnapshot.log").write_text(log)
    f = detect(tr, "LIN-BACKUP-001")
    # the newest run had errors; the last SUCCESS is 30 h old: beyond the default 26 h
    assert f.observed["stale"] == ["rsnapshot"] and f.observed["oldest_success_age_hours"] == 30
    assert detect(tr, "LIN-BACKUP-001", {"max_age_hours": 48}).status == "compliant"
    sh(host, "rm /etc/rsnapshot.conf /var/log/rsnapshot.log")


# ------------------------------------------------------------------------------------- LUKS


def test_luks_in_a_container_is_an_error_with_its_reason_never_compliant(
    tr: SshTransport,
) -> None:
    f = detect(tr, "LIN-LUKS-001")
    assert f.status == "error", f
    assert "/" in f.observed["volumes"] and "/" in f.observed["unverified"]
    assert f.error and "not a block device" in f.error
    sinks = heal(tr, f)
    assert sinks.outcomes() == [("escalated", "L3", "LIN-LUKS-001")]
