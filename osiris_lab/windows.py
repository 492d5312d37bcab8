"""LAB SIMULATOR ONLY — a model of one Windows server that answers catalogue runbook phases.

Never used outside lab mode: only ``osiris_lab``, the tests and the demo import it.

No Windows host can run in CI, so the demo and the tests send the *real* rendered PowerShell
through the real pywinrm client to :class:`~osiris_lab.wsman.WsmanLabServer`, whose handler
is a :class:`WindowsLabHost`. The host:

* refuses anything that is not exactly a catalogue script: the first line must be
  ``# osiris: runbook=<ID> phase=<phase> sha256=<hex>``, the hash must match the catalogue's
  phase script, and the whole text must equal ``render(runbook, phase, params)`` for the
  parameters carried in the script's own preamble (rc 1 otherwise) — so a test cannot pass with
  a script the agent would not really send;
* answers ``detect``/``verify`` from its state model, in the JSON shape the real ``.ps1`` prints
  (the manifests' ``observed_keys``), and applies ``remediate``/``rollback`` to that state, so a
  remediation changes what the next detect sees;
* refuses what Windows refuses: a script whose own code (not a here-string a SYSTEM scheduled
  task runs) calls the Windows Update Agent's ``CreateUpdateDownloader()``/
  ``CreateUpdateInstaller()`` fails with ``E_ACCESSDENIED (0x80070005)``, as it does from a
  WinRM network logon (:mod:`osiris_lab.ps_code` reads the code);
* keeps snapshots as the scripts do: a remediate saves the state behind each ``$before.<key>``
  it sets (:data:`SNAPSHOT_PATHS`) before it changes anything; a rollback restores, from the
  newest unused snapshot of that runbook (used once, at most 30 minutes old), exactly the keys it
  reads (``$snap.<key>``) — a key the
  remediate never saved fails as PowerShell's strict mode does, and a key it forgets to read
  stays changed, so the executor's re-check catches a rollback that does not match;
* models account policy the way ``secedit`` sees it (``account_policy``: the local security
  database; ``gpo_account_policy``: what a domain GPO sets, merged over it);
* injects faults on demand: :meth:`inject` (``firewall_off``, ``defender_off``,
  ``spooler_on_dc``, ``audit_policy_gone``, ``service_stopped:<name>`` …, see :data:`FAULTS`),
  :meth:`fail_next` (the next run of a phase errors) and :meth:`break_next` (the next remediation
  claims success but changes nothing). Dropping the connection is the WS-Man server's fault
  (``server.faults.drop_next()``).

Why this file is long: it is one simulated Windows host that answers every Windows runbook's detect
and remediate scripts; each method is one script's behaviour over one shared state dict, and the
fault table beside them names what each script must find. Lab code: never on the appliance.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from osiris_core.catalog import Catalog, load_catalog, render, script_sha256
from osiris_core.catalog.bounds import CheckedParams, TrustContext
from osiris_core.errors import SchemaError
from osiris_lab import ps_code
from osiris_lab.windows_edr import EDR_FAULTS, WindowsEdrLab
from osiris_lab.windows_time import TIME_FAULTS, WindowsTimeLab

HEADER_RE = re.compile(
    r"^# osiris: runbook=(?P<id>[A-Z0-9-]+) phase=(?P<phase>[a-z]+) sha256=(?P<sha>[0-9a-f]{64})$"
)
PARAMS_RE = re.compile(r"FromBase64String\('(?P<b64>[A-Za-z0-9+/=]*)'\)")

AUDIT_GUIDS = {
    "{0CCE9215-69AE-11D9-BED3-505054503030}": "Logon",
    "{0CCE9216-69AE-11D9-BED3-505054503030}": "Logoff",
    "{0CCE9217-69AE-11D9-BED3-505054503030}": "Account Lockout",
    "{0CCE923F-69AE-11D9-BED3-505054503030}": "Credential Validation",
    "{0CCE9235-69AE-11D9-BED3-505054503030}": "User Account Management",
    "{0CCE9237-69AE-11D9-BED3-505054503030}": "Security Group Management",
    "{0CCE922F-69AE-11D9-BED3-505054503030}": "Audit Policy Change",
    "{0CCE9228-69AE-11D9-BED3-505054503030}": "Sensitive Privilege Use",
    "{0CCE922B-69AE-11D9-BED3-505054503030}": "Process Creation",
}
PROFILES = ("domain", "private", "public")
E_ACCESSDENIED = "Exception from HRESULT: 0x80070005 (E_ACCESSDENIED)"

# snapshot key (``$before.<key>`` in a remediate, ``$snap.<key>`` in its rollback) -> the state
# paths it stands for (``*`` is every child). A key missing here is a lab that is out of step.
SNAPSHOT_PATHS: dict[str, tuple[str, ...]] = {
    "firewall_enabled": ("firewall.*.enabled",),
    "firewall_inbound": ("firewall.*.inbound",),
    "security_log": ("security_log_mb",),
    "dns_servers": ("adapters.*.dns",),
    "categories": ("adapters.*.category",),
    "netbios": ("adapters.*.netbios",),
    "audit_backup": ("audit",),
    "lockout_policy": (
        "account_policy.LockoutBadCount",
        "account_policy.LockoutDuration",
        "account_policy.ResetLockoutCount",
    ),
    "password_policy": (
        "account_policy.MinimumPasswordLength",
        "account_policy.MaximumPasswordAge",
    ),
    "defender_prefs": ("defender.realtime", "defender.behavior", "defender.ioav"),
    "dns_service": ("services.DNS.status", "services.DNS.start_type"),
    "dhcp_service": ("services.DHCPServer.status", "services.DHCPServer.start_type"),
    "spooler_service": ("services.Spooler.status", "services.Spooler.start_type"),
    "w32time": ("services.W32Time.status", "services.W32Time.start_type", "w32time.type"),
    "wsus_policy": ("wsus",),
}
SNAPSHOT_MAX_AGE_S = 30 * 60  # Get-OsirisSnapshot -MaxAgeMinutes' default
LOCKOUT_KEYS = ("LockoutBadCount", "LockoutDuration", "ResetLockoutCount")
PASSWORD_KEYS = ("MinimumPasswordLength", "MaximumPasswordAge")


class LabFault(Exception):
    """An error a phase script would throw (becomes rc 1 and a status=error result)."""


def default_state() -> dict[str, Any]:
    """A healthy domain controller at a small clinic: every Windows runbook compliant."""
    svc = {"status": "Running", "start_type": "Automatic", "installed": True}
    return {
        "hostname": "DC01",
        "domain_role": 5,  # primary domain controller
        "part_of_domain": True,
        "secure_channel_ok": True,
        "replication_failures": 0,
        "firewall": {p: {"enabled": True, "inbound": "Block"} for p in PROFILES},
        "defender": {
            "signature_age_days": 1,
            "realtime": True,
            "behavior": True,
            "ioav": True,
        },
        "services": {
            "WinDefend": dict(svc),
            "EventLog": dict(svc),
            "DNS": dict(svc),
            "DHCPServer": dict(svc),
            "Spooler": {"status": "Stopped", "start_type": "Disabled", "installed": True},
            "W32Time": dict(svc),
            "wuauserv": {"status": "Running", "start_type": "Manual", "installed": True},
            "BITS": {"status": "Running", "start_type": "Manual", "installed": True},
            "CryptSvc": dict(svc),
            "VSS": {"status": "Stopped", "start_type": "Manual", "installed": True},
        },
        "w32time": {"type": "NTP", "ntp_server": "time.clinic.example,0x9"},
        "bitlocker": {
            "C:": {
                "volume_status": "FullyEncrypted",
                "protection_status": "On",
                "encryption_method": "XtsAes256",
                "protectors": ["Tpm", "RecoveryPassword"],
            }
        },
        "audit": dict.fromkeys(AUDIT_GUIDS, "Success and Failure"),
        "security_log_mb": 1024,
        # [System Access] as `secedit /export` writes it (local security database) …
        "account_policy": {
            "MinimumPasswordLength": 14,
            "MaximumPasswordAge": 60,
            "LockoutBadCount": 5,
            "LockoutDuration": 30,
            "ResetLockoutCount": 30,
        },
        # … and what a domain GPO sets over it (`/mergedpolicy`, RSoP); none by default
        "gpo_account_policy": {},
        "scheduled_tasks": {},  # name -> {"user", "run_level", "state"}: tasks left registered
        "updates": [{"kb": "KB5036000", "severity": "Important", "age_days": 3}],
        "reboot_pending": False,
        "last_hotfix": "KB5034441",
        "disk": {"size_gb": 200.0, "free_gb": 90.0, "reclaimable_gb": 4.0},
        "adapters": {
            "Ethernet0": {
                "up": True,
                "dns": "10.0.0.10,10.0.0.11",
                "netbios": 2,
                "category": "DomainAuthenticated",
                "description": "Intel(R) 82574L Gigabit Network Connection",
            }
        },
        "default_route": True,
        "reachable": True,
        "shadow_copies": 2,
        "wsus": {"wu_server": "http://wsus.clinic.example:8530", "sus_client_id": True},
        "wu_errors_24h": 0,
        "unhealthy_disks": [],
        "unhealthy_volumes": [],
        "backup": {"policy": True, "age_hours": 6, "last_result": "0"},
    }


def _svc_stopped(name: str) -> Callable[[dict[str, Any]], None]:
    def f(s: dict[str, Any]) -> None:
        s["services"][name]["status"] = "Stopped"

    return f


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def f(s: dict[str, Any]) -> None:
        cur = s
        parts = path.split(".")
        for p in parts[:-1]:
            cur = cur[p]
        cur[parts[-1]] = copy.deepcopy(value)

    return f


def _all(*fs: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def f(s: dict[str, Any]) -> None:
        for g in fs:
            g(s)

    return f


def _adapters(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def f(s: dict[str, Any]) -> None:
        for a in s["adapters"].values():
            a[key] = value

    return f


FAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "firewall_off": lambda s: [p.update(enabled=False) for p in s["firewall"].values()] and None,
    "inbound_allow": lambda s: [p.update(inbound="Allow") for p in s["firewall"].values()] and None,
    "defender_off": _all(
        _set("defender.realtime", False),
        _set("defender.behavior", False),
        _set("defender.ioav", False),
    ),
    "defender_stopped": _svc_stopped("WinDefend"),
    "signatures_old": _set("defender.signature_age_days", 12),
    "spooler_on_dc": _all(
        _set("domain_role", 5),
        _set("services.Spooler.status", "Running"),
        _set("services.Spooler.start_type", "Automatic"),
    ),
    "audit_policy_gone": lambda s: s.update(audit=dict.fromkeys(AUDIT_GUIDS, "No Auditing")),
    "eventlog_small": _set("security_log_mb", 20),
    "bitlocker_suspended": _set("bitlocker.C:.protection_status", "Off"),
    "bitlocker_off": _set(
        "bitlocker.C:",
        {
            "volume_status": "FullyDecrypted",
            "protection_status": "Off",
            "encryption_method": "None",
            "protectors": [],
        },
    ),
    "workgroup": _all(_set("part_of_domain", False), _set("domain_role", 2)),  # ENCRYPTION-001
    "ad_backup_fails": _set("ad_backup_fails", True),  # the DC refuses BitLocker's backup
    "password_policy_weak": _all(
        _set("account_policy.MinimumPasswordLength", 6),
        _set("account_policy.MaximumPasswordAge", -1),
    ),
    "lockout_off": _set("account_policy.LockoutBadCount", 0),
    "gpo_password_policy": _set("gpo_account_policy.MinimumPasswordLength", 6),
    "gpo_lockout_policy": _set("gpo_account_policy.LockoutBadCount", 0),
    "updates_overdue": lambda s: s["updates"].append(
        {"kb": "KB5037771", "severity": "Critical", "age_days": 45}
    ),
    "disk_full": _all(_set("disk.free_gb", 6.0), _set("disk.reclaimable_gb", 30.0)),
    "disk_full_hard": _all(_set("disk.free_gb", 4.0), _set("disk.reclaimable_gb", 1.0)),
    "dns_wrong": _adapters("dns", "8.8.8.8"),
    "netbios_on": _adapters("netbios", 0),
    "public_profile": _adapters("category", "Public"),
    "nic_down": _all(_set("default_route", False), _set("reachable", False)),
    "shadow_copies_gone": _all(
        _set("shadow_copies", 0), _set("services.VSS.start_type", "Disabled")
    ),
    "secure_channel_broken": _set("secure_channel_ok", False),
    "replication_failures": _set("replication_failures", 2),
    "backup_stale": _set("backup.age_hours", 72),
    "backup_no_policy": _all(_set("backup.policy", False), _set("backup.age_hours", -1)),
    "wsus_wrong": _all(
        _set("wsus.wu_server", "http://old-wsus:8530"), _set("wsus.sus_client_id", False)
    ),
    "volume_unhealthy": _set("unhealthy_volumes", ["D"]),
    "w32time_local": _set("w32time.type", "NoSync"),
    "w32time_unconfigured": _all(_set("w32time.type", "NoSync"), _set("w32time.ntp_server", "")),
    "wu_disabled": _set("services.wuauserv.start_type", "Disabled"),
    "wu_errors": _set("wu_errors_24h", 9),
}  # fmt: skip
FAULTS.update(EDR_FAULTS)  # RB-WIN-EDR-001 (osiris_lab/windows_edr.py)
FAULTS.update(TIME_FAULTS)  # RB-WIN-TIME-001 (osiris_lab/windows_time.py)


class WindowsLabHost(WindowsEdrLab, WindowsTimeLab):
    """One simulated Windows host. Call it (or :meth:`handle`) with (script, stdin)."""

    def __init__(self, catalog: Catalog | None = None, state: dict[str, Any] | None = None):
        self.catalog = catalog or load_catalog()
        self.state = state if state is not None else default_state()
        self.log: list[tuple[str, str, int]] = []  # (runbook, phase, rc) of every run
        self.refused: list[str] = []  # first lines of refused scripts
        self._fail: list[tuple[str, str]] = []
        self._break: list[str] = []
        self._break_rollback: list[str] = []
        # runbook -> snapshots its remediates saved, oldest first (%ProgramData%/Osiris/snapshots):
        # {"taken": clock(), "used": renamed *.restored by a rollback, "data": key -> paths}
        self.snapshots: dict[str, list[dict[str, Any]]] = {}
        self.clock: Callable[[], float] = time.monotonic  # tests move it (snapshot age)
        self._lock = threading.Lock()

    # -- faults -----------------------------------------------------------------------------
    def inject(self, name: str) -> None:
        """Drift the host: a name from :data:`FAULTS`, or ``service_stopped:<service>``."""
        with self._lock:
            if name.startswith("service_stopped:"):
                svc = name.split(":", 1)[1]
                if svc not in self.state["services"]:
                    raise KeyError(f"lab host has no service {svc!r}")
                self.state["services"][svc]["status"] = "Stopped"
                return
            if name not in FAULTS:
                raise KeyError(f"unknown lab fault {name!r}; known: {', '.join(sorted(FAULTS))}")
            FAULTS[name](self.state)

    def fail_next(self, runbook_id: str, phase: str) -> None:
        """The next run of ``phase`` of ``runbook_id`` throws (rc 1) without changing state."""
        self._fail.append((runbook_id, phase))

    def break_next(self, runbook_id: str) -> None:
        """The next remediation of ``runbook_id`` reports success but changes nothing."""
        self._break.append(runbook_id)

    def break_rollback_next(self, runbook_id: str) -> None:
        """The next rollback of ``runbook_id`` reports success but restores nothing."""
        self._break_rollback.append(runbook_id)

    def phases_run(self) -> list[tuple[str, str]]:
        return [(r, p) for r, p, _ in self.log]

    # -- the WS-Man handler -----------------------------------------------------------------
    def __call__(self, script: str, stdin: str = "") -> tuple[int, str, str]:
        return self.handle(script, stdin)

    def handle(self, script: str, stdin: str = "") -> tuple[int, str, str]:
        first = script.split("\n", 1)[0].rstrip("\r")
        m = HEADER_RE.match(first)
        if m is None:
            self.refused.append(first[:120])
            return 1, "", "lab: not a catalogue script (no osiris header)"
        rid, phase = m["id"], m["phase"]
        try:
            rb = self.catalog.runbook(rid)
            if rb.platform != "windows" or phase not in rb.phases:
                raise SchemaError(f"{rid} has no Windows {phase} phase")
            if script_sha256(rb, phase) != m["sha"]:
                raise SchemaError("script hash does not match the catalogue")
            params = self._params(script)
            # The lab checks that this is a catalogue rendering, not the site's allow-lists
            # (the agent judged those): trust-redirecting values are taken as they came.
            trusted = {n: v for n, v in params.items() if n in rb.params and rb.params[n].trusted}
            as_sent = CheckedParams(rb.id, params, TrustContext(pinned={rb.id: trusted}))
            if render(rb, phase, as_sent) != script:
                raise SchemaError("script text differs from the catalogue rendering")
        except SchemaError as exc:
            self.refused.append(first[:120])
            return 1, "", f"lab: refused: {exc}"
        with self._lock:
            self.last_stdin = stdin  # what the agent sent on stdin (RB-WIN-ENCRYPTION-001's steps)
            denied = ps_code.calls_wua_in_session(rb.script(phase))
            if denied:
                # Windows: the WUA downloader/installer refuses a network logon (WinRM)
                err = f"{E_ACCESSDENIED} at {denied[0]}() from a WinRM network logon"
                rc, out = 1, _json({"status": "error", "observed": {"error": err}, "expected": {}})
            else:
                rc, out = self._run(rid, phase, params, rb.script(phase))
            self.log.append((rid, phase, rc))
        return rc, out, ""

    @staticmethod
    def _params(script: str) -> dict[str, Any]:
        m = PARAMS_RE.search(script)
        if m is None:
            raise SchemaError("no parameter preamble")
        try:
            return json.loads(base64.b64decode(m["b64"]).decode("utf-8"))
        except ValueError:
            raise SchemaError("parameter preamble is not base64 JSON") from None

    def _run(self, rid: str, phase: str, params: dict[str, Any], body: str) -> tuple[int, str]:
        try:
            if (rid, phase) in self._fail:
                self._fail.remove((rid, phase))
                raise LabFault(f"injected failure in {rid} {phase}")
            fn_name = "_" + rid.replace("RB-WIN-", "").replace("-", "_").lower()
            if phase in ("detect", "verify"):
                status, observed, expected = getattr(self, fn_name + "_detect")(params)
                return 0, _json({"status": status, "observed": observed, "expected": expected})
            if phase == "rollback":
                return 0, _done(True, self._rollback(rid, body))
            if phase == "remediate":
                self._snapshot(rid, body)  # the scripts save before they change anything
                if rid in self._break:
                    self._break.remove(rid)
                    return 0, _done(True, "lab: remediation had no effect")
                action = getattr(self, fn_name + "_fix")(params)
                if isinstance(action, dict):  # a script that prints its own result
                    return 0, _json(action)
                return 0, _done(True, action)
            raise LabFault(f"{rid} has no {phase} in the lab model")
        except LabFault as exc:
            return 1, _json({"status": "error", "observed": {"error": str(exc)}, "expected": {}})

    # -- snapshots --------------------------------------------------------------------------
    def _snapshot(self, rid: str, body: str) -> None:
        keys = ps_code.snapshot_keys_saved(body)
        if not keys:
            return
        snap: dict[str, dict[str, Any]] = {}
        for key in keys:
            if key not in SNAPSHOT_PATHS:
                raise LabFault(f"lab out of step: snapshot key {key!r} of {rid} is not modelled")
            snap[key] = {
                path: copy.deepcopy(value)
                for pattern in SNAPSHOT_PATHS[key]
                for path, value in _glob(self.state, pattern)
            }
        self.snapshots.setdefault(rid, []).append(
            {"taken": self.clock(), "used": False, "data": snap}
        )

    def _rollback(self, rid: str, body: str) -> str:
        keys = ps_code.snapshot_keys_read(body)
        saved = [s for s in self.snapshots.get(rid, []) if not s["used"]]
        if not saved:
            raise LabFault(
                f"no snapshot of {rid} under C:\\ProgramData\\Osiris\\snapshots; "
                "nothing to roll back to"
            )
        newest = saved[-1]
        if self.clock() - newest["taken"] > SNAPSHOT_MAX_AGE_S:
            raise LabFault(
                f"the newest snapshot of {rid} was taken before this run; nothing restored"
            )
        newest["used"] = True  # Get-OsirisSnapshot renames it *.restored before returning it
        snap = newest["data"]
        for key in keys:
            if key not in snap:  # Set-StrictMode: reading a property the object lacks throws
                raise LabFault(f"The property '{key}' cannot be found on this object.")
        if rid in self._break_rollback:
            self._break_rollback.remove(rid)
            return "lab: rollback had no effect"
        for key in keys:
            for path, value in snap[key].items():
                _put(self.state, path, copy.deepcopy(value))
        return f"restored {', '.join(keys)} from the snapshot"

    # -- helpers ----------------------------------------------------------------------------
    def _svc(self, name: str) -> dict[str, Any]:
        return self.state["services"][name]

    def _is_dc(self) -> bool:
        return self.state["domain_role"] >= 4

    def _start(self, name: str, start_type: str | None = "Automatic") -> None:
        svc = self._svc(name)
        if start_type is not None:
            svc["start_type"] = start_type
        if svc["start_type"] == "Disabled":
            raise LabFault(f"Service '{name}' cannot be started because it is disabled")
        svc["status"] = "Running"

    # -- per runbook: detect returns (status, observed, expected); fix returns the action ----
    def _ad_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        if not self._is_dc():
            return (
                "compliant",
                {"is_domain_controller": False, "replication_failures": 0},
                {"replication_failures": 0},
            )
        n = self.state["replication_failures"]
        ok = n <= p["max_replication_failures"]
        return (
            "compliant" if ok else "drift",
            {"is_domain_controller": True, "replication_failures": n},
            {"replication_failures": p["max_replication_failures"]},
        )

    def _ad_001_fix(self, p: dict[str, Any]) -> str:
        self.state["replication_failures"] = 0
        return "replication forced (12 lines of output)"

    def _ad_002_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        if not self.state["part_of_domain"]:
            return (
                "compliant",
                {"domain_joined": False, "secure_channel_ok": False},
                {"secure_channel_ok": True},
            )
        ok = bool(self.state["secure_channel_ok"])
        return (
            "compliant" if ok else "drift",
            {"domain_joined": True, "secure_channel_ok": ok},
            {"secure_channel_ok": True},
        )

    def _ad_002_fix(self, p: dict[str, Any]) -> str:
        self.state["secure_channel_ok"] = True
        return "secure channel repaired"

    def _av_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        d = self.state["defender"]
        running = self._svc("WinDefend")["status"] == "Running"
        enabled = running  # AntivirusEnabled follows the engine service in this model
        age = d["signature_age_days"]
        ok = running and enabled and age <= p["max_signature_age_days"]
        return (
            "compliant" if ok else "drift",
            {"antivirus_enabled": enabled, "service_running": running, "signature_age_days": age},
            {
                "antivirus_enabled": True,
                "service_running": True,
                "signature_age_days": p["max_signature_age_days"],
            },
        )

    def _av_001_fix(self, p: dict[str, Any]) -> str:
        self._start("WinDefend", None)
        self.state["defender"]["signature_age_days"] = 0
        task = self._system_task("RB-WIN-AV-001", keep=True)  # fire-and-verify
        return f"signatures updated, quick scan started as SYSTEM (task {task})"

    def _backup_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        b = self.state["backup"]
        age = b["age_hours"]
        ok = 0 <= age <= p["max_age_hours"]
        last = "" if age < 0 else "04/14/2025 02:00:00"
        return (
            "compliant" if ok else "drift",
            {"last_success": last, "age_hours": age, "last_result": b["last_result"]},
            {"age_hours": p["max_age_hours"]},
        )

    def _backup_001_fix(self, p: dict[str, Any]) -> str:
        if not self.state["backup"]["policy"]:
            raise LabFault("no Windows Server Backup policy is configured")
        self.state["backup"]["age_hours"] = 0
        return "backup started"

    def _encryption_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        v = self._volume(p["mount_point"])
        ok = v["volume_status"] in ("FullyEncrypted", "EncryptionInProgress")
        return (
            "compliant" if ok else "drift",
            {
                "volume_status": v["volume_status"],
                "encryption_method": v["encryption_method"],
                "protectors": list(v["protectors"]),
            },
            {"volume_status": "FullyEncrypted"},
        )

    def _encryption_001_fix(self, p: dict[str, Any]) -> dict[str, Any]:
        from osiris_lab import bitlocker  # the escrow steps; never enables an un-escrowed key

        return bitlocker.remediate(self.state, p, getattr(self, "last_stdin", ""))

    def _volume(self, mp: str) -> dict[str, Any]:
        v = self.state["bitlocker"].get(mp)
        if v is None:
            raise LabFault(f"Cannot find the volume {mp}")
        return v

    def _firewall_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        obs = {k: bool(v["enabled"]) for k, v in self.state["firewall"].items()}
        ok = all(obs.values())
        return "compliant" if ok else "drift", obs, dict.fromkeys(PROFILES, True)

    def _firewall_001_fix(self, p: dict[str, Any]) -> str:
        for v in self.state["firewall"].values():
            v["enabled"] = True
        return "all firewall profiles enabled"

    def _logging_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        running = self._svc("EventLog")["status"] == "Running"
        mb = self.state["security_log_mb"]
        ok = running and mb >= p["min_security_log_mb"]
        return (
            "compliant" if ok else "drift",
            {"eventlog_running": running, "security_log_mb": mb},
            {"eventlog_running": True, "security_log_mb": p["min_security_log_mb"]},
        )

    def _logging_001_fix(self, p: dict[str, Any]) -> str:
        self._start("EventLog", None)
        self.state["security_log_mb"] = p["min_security_log_mb"]
        return f"Security log set to {p['min_security_log_mb']} MB"

    def _net_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        obs = {n: a["dns"] for n, a in self.state["adapters"].items() if a["up"]}
        if p["dns_servers"] == "":  # no site setting: every connected adapter needs a server
            bad = sum(1 for v in obs.values() if v == "")
            want = "any"
        else:
            bad = sum(1 for v in obs.values() if v != p["dns_servers"])
            want = p["dns_servers"]
        return ("compliant" if bad == 0 else "drift", {"adapters": obs}, {"dns_servers": want})

    def _net_001_fix(self, p: dict[str, Any]) -> str:
        if p["dns_servers"] == "":
            raise LabFault("dns_servers is not set for this site")
        n = 0
        for a in self.state["adapters"].values():
            if a["up"] and a["dns"] != p["dns_servers"]:
                a["dns"] = p["dns_servers"]
                n += 1
        return f"DNS servers set on {n} adapter(s)"

    def _net_002_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        exp = {"default_route": True, "reachable": True}
        if not self.state["default_route"]:
            return "drift", {"adapter": "", "default_route": False, "reachable": False}, exp
        ok = bool(self.state["reachable"])
        name = next(iter(self.state["adapters"]))
        obs = {"adapter": name, "default_route": True, "reachable": ok}
        return "compliant" if ok else "drift", obs, exp

    def _net_002_fix(self, p: dict[str, Any]) -> str:
        self.state["default_route"] = True
        self.state["reachable"] = True
        return f"adapter {next(iter(self.state['adapters']))} restarted"

    def _net_003_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        pub = [n for n, a in self.state["adapters"].items() if a["category"] == "Public"]
        return (
            "compliant" if not pub else "drift",
            {"public_interfaces": pub},
            {"public_interfaces": []},
        )

    def _net_003_fix(self, p: dict[str, Any]) -> str:
        n = 0
        for a in self.state["adapters"].values():
            if a["category"] == "Public":
                a["category"] = "Private"
                n += 1
        return f"{n} connection(s) set to Private"

    def _net_004_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        on = [a["description"] for a in self.state["adapters"].values() if a["netbios"] != 2]
        return (
            "compliant" if not on else "drift",
            {"netbios_enabled_adapters": on},
            {"netbios_enabled_adapters": []},
        )

    def _net_004_fix(self, p: dict[str, Any]) -> str:
        n = 0
        for a in self.state["adapters"].values():
            if a["netbios"] != 2:
                a["netbios"] = 2
                n += 1
        return f"NetBIOS disabled on {n} adapter(s)"

    def _patch_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        crit = imp = overdue = oldest = 0
        for u in self.state["updates"]:
            if u["severity"] == "Critical":
                crit += 1
                oldest = max(oldest, u["age_days"])
            if u["severity"] == "Important":
                imp += 1
            counts = u["severity"] == "Critical" or (
                p["include_important"] and u["severity"] == "Important"
            )
            if counts and u["age_days"] > p["critical_overdue_days"]:
                overdue += 1
        obs = {
            "critical_missing": crit,
            "important_missing": imp,
            "overdue": overdue,
            "oldest_critical_days": oldest,
            "reboot_pending": bool(self.state["reboot_pending"]),
            "last_hotfix": self.state["last_hotfix"],
        }
        exp = {"overdue": 0, "critical_overdue_days": p["critical_overdue_days"]}
        return "drift" if overdue else "compliant", obs, exp

    def _system_task(self, rid: str, *, keep: bool) -> str:
        """Invoke-OsirisSystemTask: sweep this runbook's finished tasks (one still running is
        refused), register a one-shot task as SYSTEM; a polled task is removed once read, a
        fire-and-verify one stays registered until the next run's sweep."""
        tasks = self.state["scheduled_tasks"]
        prefix = f"Osiris-{rid}-"
        for name in [n for n in tasks if n.startswith(prefix)]:
            if tasks[name]["state"] == "Running":
                raise LabFault(f"task {name} from an earlier run is still running")
            del tasks[name]
        self._task_seq = getattr(self, "_task_seq", 0) + 1
        name = f"{prefix}{self._task_seq:032x}"
        if keep:
            tasks[name] = {"user": "SYSTEM", "run_level": "Highest", "state": "Ready"}
        return name

    def _patch_001_fix(self, p: dict[str, Any]) -> str:
        self._system_task("RB-WIN-PATCH-001", keep=False)  # WUA runs in the task, as SYSTEM
        todo = [u for u in self.state["updates"] if u["severity"] in ("Critical", "Important")]
        if not todo:
            return "nothing to install"
        self.state["updates"] = [u for u in self.state["updates"] if u not in todo]
        self.state["last_hotfix"] = todo[-1]["kb"]
        self.state["reboot_pending"] = True
        kbs = ", ".join(u["kb"] for u in todo)
        action = f"installed {len(todo)} update(s) ({kbs}) as SYSTEM, result code 2"
        if p["allow_reboot"]:
            self.state["reboot_scheduled"] = True
            return action + "; reboot required, scheduled in 5 minutes"
        return action + "; reboot required, not performed (allow_reboot is false)"

    def _sec_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        obs = {k: v["inbound"] for k, v in self.state["firewall"].items()}
        bad = [v for v in obs.values() if v not in ("Block", "NotConfigured")]
        return "compliant" if not bad else "drift", obs, dict.fromkeys(PROFILES, "Block")

    def _sec_001_fix(self, p: dict[str, Any]) -> str:
        for v in self.state["firewall"].values():
            v["inbound"] = "Block"
        return "default inbound action set to Block"

    def _sec_002_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        missing = [
            f"{AUDIT_GUIDS[g]} {g}"
            for g, setting in self.state["audit"].items()
            if not ("Success" in setting and "Failure" in setting)
        ]
        return "compliant" if not missing else "drift", {"missing": missing}, {"missing": []}

    def _sec_002_fix(self, p: dict[str, Any]) -> str:
        self.state["audit"] = dict.fromkeys(AUDIT_GUIDS, "Success and Failure")
        return f"audit policy set for {len(AUDIT_GUIDS)} subcategories"

    def _policy(self, keys: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
        """The effective [System Access] values (GPO merged over local) and which of ``keys`` a
        domain GPO sets — what the scripts read from ``secedit /export [/mergedpolicy]``."""
        gpo = self.state["gpo_account_policy"]
        eff = {**self.state["account_policy"], **gpo}
        return eff, [k for k in keys if k in gpo]

    def _refuse_gpo(self, managed: list[str], what: str) -> None:
        if managed:
            raise LabFault(
                f"refused: a domain GPO sets {', '.join(managed)}; set the {what} in the GPO "
                "(a local change would be undone at the next refresh)"
            )

    def _sec_003_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        eff, managed = self._policy(LOCKOUT_KEYS)
        t, d = int(eff.get("LockoutBadCount", 0)), int(eff.get("LockoutDuration", 0))
        tok = 0 < t <= p["lockout_threshold"]
        dok = d == -1 or d >= p["lockout_duration_min"]
        return (
            "compliant" if tok and dok else "drift",
            {"lockout_threshold": t, "lockout_duration_min": d, "gpo_managed": bool(managed)},
            {
                "lockout_threshold": p["lockout_threshold"],
                "lockout_duration_min": p["lockout_duration_min"],
            },
        )

    def _sec_003_fix(self, p: dict[str, Any]) -> str:
        self._refuse_gpo(self._policy(LOCKOUT_KEYS)[1], "lockout policy")
        t, d = p["lockout_threshold"], p["lockout_duration_min"]
        self.state["account_policy"].update(
            LockoutBadCount=t, ResetLockoutCount=d, LockoutDuration=d
        )
        return f"lockout after {t} attempts for {d} minutes"

    def _sec_004_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        eff, managed = self._policy(PASSWORD_KEYS)
        length = int(eff.get("MinimumPasswordLength", 0))
        age = int(eff.get("MaximumPasswordAge", -1))
        lok = length >= p["min_password_length"]
        aok = 0 < age <= p["max_password_age_days"]
        return (
            "compliant" if lok and aok else "drift",
            {
                "min_password_length": length,
                "max_password_age_days": age,
                "gpo_managed": bool(managed),
            },
            {
                "min_password_length": p["min_password_length"],
                "max_password_age_days": p["max_password_age_days"],
            },
        )

    def _sec_004_fix(self, p: dict[str, Any]) -> str:
        self._refuse_gpo(self._policy(PASSWORD_KEYS)[1], "password policy")
        length, age = p["min_password_length"], p["max_password_age_days"]
        self.state["account_policy"].update(MinimumPasswordLength=length, MaximumPasswordAge=age)
        return f"minimum length {length}, maximum age {age} days"

    def _sec_005_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        v = self._volume(p["mount_point"])
        ok = v["protection_status"] == "On"
        return (
            "compliant" if ok else "drift",
            {"protection_status": v["protection_status"], "volume_status": v["volume_status"]},
            {"protection_status": "On"},
        )

    def _sec_005_fix(self, p: dict[str, Any]) -> str:
        v = self._volume(p["mount_point"])
        if v["volume_status"] == "FullyDecrypted":
            raise LabFault("volume is not encrypted; see RB-WIN-ENCRYPTION-001")
        v["protection_status"] = "On"
        return "BitLocker protection resumed"

    def _sec_006_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        d = self.state["defender"]
        obs = {
            "realtime_enabled": bool(d["realtime"]),
            "behavior_monitor_enabled": bool(d["behavior"]),
            "ioav_enabled": bool(d["ioav"]),
        }
        return "compliant" if all(obs.values()) else "drift", obs, dict.fromkeys(obs, True)

    def _sec_006_fix(self, p: dict[str, Any]) -> str:
        self.state["defender"].update(realtime=True, behavior=True, ioav=True)
        return "real-time protection enabled"

    def _stg_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        d = self.state["disk"]
        pct = round(100 * d["free_gb"] / d["size_gb"], 1)
        return (
            "compliant" if pct >= p["min_free_percent"] else "drift",
            {"free_percent": pct, "free_gb": round(d["free_gb"], 1)},
            {"free_percent": p["min_free_percent"]},
        )

    def _stg_001_fix(self, p: dict[str, Any]) -> str:
        d = self.state["disk"]
        if self._svc("wuauserv")["start_type"] == "Disabled":
            raise LabFault("Service 'wuauserv' cannot be started because it is disabled")
        d["free_gb"] += d["reclaimable_gb"]
        d["reclaimable_gb"] = 0.0
        return "temp files and update cache cleaned"

    def _stg_002_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        start = self._svc("VSS")["start_type"]
        n = self.state["shadow_copies"]
        ok = start != "Disabled" and n >= p["min_shadow_copies"]
        return (
            "compliant" if ok else "drift",
            {"vss_start_type": start, "shadow_copies": n},
            {"shadow_copies": p["min_shadow_copies"]},
        )

    def _stg_002_fix(self, p: dict[str, Any]) -> str:
        if self._svc("VSS")["start_type"] == "Disabled":
            self._svc("VSS")["start_type"] = "Manual"
        self.state["shadow_copies"] += 1
        return "shadow copy created"

    def _stg_003_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        disks, vols = list(self.state["unhealthy_disks"]), list(self.state["unhealthy_volumes"])
        return (
            "compliant" if not disks and not vols else "drift",
            {"unhealthy_disks": disks, "unhealthy_volumes": vols},
            {"unhealthy_disks": [], "unhealthy_volumes": []},
        )

    def _stg_003_fix(self, p: dict[str, Any]) -> str:
        n = len(self.state["unhealthy_volumes"])
        if n == 0:
            return "scanned 0 volume(s)"
        self._system_task("RB-WIN-STG-003", keep=False)  # polled to completion, then removed
        self.state["unhealthy_volumes"] = []
        return f"scanned {n} volume(s) as SYSTEM"

    def _role_detect(self, name: str) -> tuple[str, dict, dict]:
        svc = self._svc(name)
        if not svc["installed"]:
            return (
                "compliant",
                {"installed": False, "status": "absent", "start_type": "absent"},
                {"status": "Running"},
            )
        ok = svc["status"] == "Running" and svc["start_type"] == "Automatic"
        return (
            "compliant" if ok else "drift",
            {"installed": True, "status": svc["status"], "start_type": svc["start_type"]},
            {"status": "Running", "start_type": "Automatic"},
        )

    def _role_fix(self, name: str) -> str:
        if not self._svc(name)["installed"]:
            return "role not installed"
        self._start(name)
        return f"started {name}"

    def _svc_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        return self._role_detect("DNS")

    def _svc_001_fix(self, p: dict[str, Any]) -> str:
        return self._role_fix("DNS")

    def _svc_002_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        return self._role_detect("DHCPServer")

    def _svc_002_fix(self, p: dict[str, Any]) -> str:
        return self._role_fix("DHCPServer")

    def _svc_003_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        dc = self._is_dc()
        should = not (dc or p["disable_everywhere"])
        svc = self._svc("Spooler")
        state, start = svc["status"], svc["start_type"]
        ok = state == "Running" if should else (state != "Running" and start == "Disabled")
        return (
            "compliant" if ok else "drift",
            {
                "is_domain_controller": dc,
                "status": state,
                "start_type": start,
                "should_run": should,
            },
            {"should_run": should},
        )

    def _svc_003_fix(self, p: dict[str, Any]) -> str:
        svc = self._svc("Spooler")
        if self._is_dc() or p["disable_everywhere"]:
            svc.update(status="Stopped", start_type="Disabled")
            return "Spooler stopped and disabled"
        self._start("Spooler")
        return "Spooler started"

    def _w32time_source(self) -> str:
        """What the scripts derive from W32Time's Parameters key (Type, NtpServer)."""
        w = self.state["w32time"]
        if w["type"] == "NT5DS":
            return "domain hierarchy"
        if w["type"] in ("NTP", "AllSync"):
            return re.split("[ ,]", w["ntp_server"])[0].strip()
        return ""

    def _svc_004_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        svc = self._svc("W32Time")
        state, start = svc["status"], svc["start_type"]
        src = self._w32time_source()
        ok = state == "Running" and start == "Automatic" and src != ""
        return (
            "compliant" if ok else "drift",
            {"status": state, "start_type": start, "source": src},
            {"status": "Running", "start_type": "Automatic", "source": "a network time source"},
        )

    def _svc_004_fix(self, p: dict[str, Any]) -> str:
        w = self.state["w32time"]
        action = "W32Time started and resynced"
        if w["type"] == "NoSync":
            if w["ntp_server"].strip() == "":
                raise LabFault(
                    "refused: W32Time has no time source configured (Type NoSync, no "
                    "NtpServer); a person must choose one"
                )
            w["type"] = "NTP"
            action = f"W32Time set back to NTP ({w['ntp_server'].strip()}), started and resynced"
        self._start("W32Time")
        return action

    def _upd_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        wu = self._svc("wuauserv")["start_type"]
        bits = self._svc("BITS")["start_type"]
        errs = self.state["wu_errors_24h"]
        ok = wu != "Disabled" and bits != "Disabled" and errs <= p["max_errors_24h"]
        return (
            "compliant" if ok else "drift",
            {"wuauserv_start_type": wu, "bits_start_type": bits, "errors_24h": errs},
            {"errors_24h": p["max_errors_24h"]},
        )

    def _upd_001_fix(self, p: dict[str, Any]) -> str:
        for n in ("wuauserv", "BITS", "CryptSvc"):
            svc = self._svc(n)
            if svc["start_type"] == "Disabled":
                svc["start_type"] = "Manual"
            svc["status"] = "Running"
        self.state["wu_errors_24h"] = 0
        return "Windows Update client reset"

    def _upd_002_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        w = self.state["wsus"]
        want = p["wsus_server"]
        bad = want != "" and (w["wu_server"] != want or not w["sus_client_id"])
        return (
            "drift" if bad else "compliant",
            {"wu_server": w["wu_server"], "sus_client_id_present": bool(w["sus_client_id"])},
            {"wu_server": want, "sus_client_id_present": True},
        )

    def _upd_002_fix(self, p: dict[str, Any]) -> str:
        if p["wsus_server"] == "":
            return "site does not use WSUS"
        self.state["wsus"].update(wu_server=p["wsus_server"], sus_client_id=True)
        self._svc("wuauserv")["status"] = "Running"
        return f"registered with {p['wsus_server']}"


def _glob(state: dict[str, Any], pattern: str) -> list[tuple[str, Any]]:
    """(concrete dotted path, value) for a pattern whose ``*`` parts match every child."""
    found: list[tuple[list[str], Any]] = [([], state)]
    for part in pattern.split("."):
        nxt: list[tuple[list[str], Any]] = []
        for path, cur in found:
            if not isinstance(cur, dict):
                continue
            names = list(cur) if part == "*" else [part] if part in cur else []
            nxt.extend((path + [n], cur[n]) for n in names)
        found = nxt
    return [(".".join(path), value) for path, value in found]


def _put(state: dict[str, Any], path: str, value: Any) -> None:
    cur = state
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur[p]
    cur[parts[-1]] = value


def _json(obj: dict[str, Any]) -> str:
    """What ``ConvertTo-Json -Compress`` prints (one line)."""
    return json.dumps(obj, separators=(",", ":")) + "\r\n"


def _done(changed: bool, action: str) -> str:
    observed = {"changed": changed, "action": action}
    return _json({"status": "compliant", "observed": observed, "expected": {}})
