"""`osiris` CLI against the real server: JSON shapes, exit codes per error class, stdout/stderr
split, confirmations, and secrets that never appear on any argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from osiris_tui.cli import main

OSIRIS = str(Path(sys.executable).parent / "osiris")


def run(live, *args: str, token: str | None = None, input: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=live.url, OSIRIS_TOKEN=token or live.token,
               OSIRIS_PROFILE_FILE="/nonexistent")  # fmt: skip
    return subprocess.run(
        [OSIRIS, *args], capture_output=True, text=True, env=env, input=input, timeout=60
    )


def invoke(live, *args: str, input: str | None = None, token: str | None = None):
    env = {"OSIRIS_SERVER": live.url, "OSIRIS_TOKEN": token or live.token,
           "OSIRIS_PROFILE_FILE": "/nonexistent"}  # fmt: skip
    return CliRunner().invoke(main, list(args), env=env, input=input)


SITE_KEYS = {"id", "name", "partner_id", "checkin_interval_s", "created_at", "window"}
APPLIANCE_KEYS = {
    "id", "site_id", "hostname", "mac", "agent_version", "created_at", "revoked_at",
    "last_seen_at", "last_seen_epoch", "online", "status", "drift_count", "error_count",
    "quarantined", "confirmed_by", "confirmed_at",
    # issue 18: the key fingerprints the box's setup screen shows, for the operator to compare
    "signing_fingerprint", "cosign_fingerprint", "box_fingerprint",
}  # fmt: skip


def test_json_schemas_are_stable(live) -> None:
    r = run(live, "site", "list", "--json")
    assert r.returncode == 0, r.stderr
    sites = json.loads(r.stdout)
    assert {s["id"] for s in sites} >= {"riverside", "weird"}
    assert all(set(s) == SITE_KEYS for s in sites)
    r = run(live, "appliance", "list", "--site", "riverside", "--json")
    apps = json.loads(r.stdout)
    assert all(set(a) == APPLIANCE_KEYS for a in apps)
    assert {a["hostname"] for a in apps} == {"rv-app-01", "rv-app-02"}
    assert r.stderr == ""
    r = run(live, "site", "show", "weird", "--json")
    assert json.loads(r.stdout)["name"] == "[bold red]x[/]"


def test_human_output_is_tab_separated_when_piped(live) -> None:
    r = run(live, "site", "list")
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["ID", "NAME", "PARTNER", "INTERVAL"]
    assert any(line.startswith("weird\t[bold red]x[/]\t") for line in lines)


def test_exit_codes_per_error_class(live) -> None:
    r = run(live, "site", "show", "no-such-site")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("osiris: error: ") and r.stderr.count("\n") == 1
    r = run(live, "site", "list", token="osk_wrong")
    assert r.returncode == 4 and r.stdout == ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    from tests.tui.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    r = subprocess.run([OSIRIS, "--server", dead, "--token", "osk_x", "site", "list"],
                       capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert r.returncode == 3 and "unreachable" in r.stderr
    r = run(live, "site", "list", "--bogus")
    assert r.returncode == 2
    env["OSIRIS_PROFILE_FILE"] = "/nonexistent"
    r = subprocess.run([OSIRIS, "site", "list"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "no server" in r.stderr


def test_auditor_cannot_write(live) -> None:
    tok = json.loads(run(live, "token", "add", "--role", "auditor", "--name", "aud").stdout)
    r = run(live, "site", "add", "Nope", token=tok["token"])
    assert r.returncode == 4
    r = run(live, "audit", "list", "--json", token=tok["token"])
    assert r.returncode == 0 and any(e["action"] == "token.create" for e in json.loads(r.stdout))


def test_profile_file(live, tmp_path) -> None:
    prof = tmp_path / "profiles.toml"
    prof.write_text(f'[lab]\nserver = "{live.url}"\ntoken = "{live.token}"\n')
    prof.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env["OSIRIS_PROFILE_FILE"] = str(prof)
    r = subprocess.run([OSIRIS, "--profile", "lab", "site", "list", "--json"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout)
    # a profile file others can read holds tokens in the open: refused, nothing sent
    prof.chmod(0o644)
    r = subprocess.run([OSIRIS, "--profile", "lab", "site", "list", "--json"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 2 and "chmod 600" in r.stderr and r.stdout == ""
    assert live.token not in r.stderr


def test_password_from_stdin_never_on_argv(live) -> None:
    secret = "s3cret-from-stdin"
    r = run(live, "cred", "add", "--site", "riverside", "--host", "cli-host", "--kind", "winrm",
            "--address", "10.1.1.1", "--username", "svc", "--password-stdin", "--json",
            input=secret + "\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["secret"] == "********" and secret not in r.stdout
    # there is no --password option at all: a secret cannot be given as an argument
    r = run(live, "cred", "add", "--site", "riverside", "--host", "h2", "--kind", "winrm",
            "--address", "h2", "--password", "x")  # fmt: skip
    assert r.returncode == 2
    for cmd in _all_commands(main):
        for p in cmd.params:
            assert "password" not in p.name or p.name == "password_stdin" or p.is_flag
    # no terminal and no --password-stdin: refused, not hung
    r = run(live, "cred", "add", "--site", "riverside", "--host", "h3", "--kind", "winrm",
            "--address", "h3", "--username", "u", input="")  # fmt: skip
    assert r.returncode == 2 and "--password-stdin" in r.stderr
    # rotate with stdin, then delete needs --yes without a TTY
    r = run(live, "cred", "rotate", "--site", "riverside", out["id"], "--password-stdin",
            "--yes", "--json", input="rotated\n")  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout)["version"] == 2
    r = run(live, "cred", "rm", "--site", "riverside", out["id"])
    assert r.returncode == 2 and "--yes" in r.stderr
    assert run(live, "cred", "show", "--site", "riverside", out["id"]).returncode == 0
    assert run(live, "cred", "rm", "--site", "riverside", out["id"], "--yes").returncode == 0
    assert run(live, "cred", "show", "--site", "riverside", out["id"]).returncode == 2


def test_runbook_disable_needs_yes_and_changes_server(live) -> None:
    rbs = json.loads(run(live, "runbook", "list", "--site", "weird", "--json").stdout)
    rb = rbs[0]["id"]
    assert run(live, "runbook", "disable", rb, "--site", "weird").returncode == 2
    r = run(live, "runbook", "disable", rb, "--site", "weird", "--yes", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [
        {"id": rb, "enabled": False, "default": rbs[0]["default"], "site": False, "appliance": None}
    ]
    r = run(live, "runbook", "reset", rb, "--site", "weird", "--json")
    assert json.loads(r.stdout)[0]["site"] is None


def test_provision_create_prints_code_and_qr(live) -> None:
    r = run(live, "provision", "create", "--site", "weird")
    assert r.returncode == 0
    code = r.stdout.split("claim code: ", 1)[1].split()[0]
    assert code.startswith("ocl_")
    assert "▀" in r.stdout or "▄" in r.stdout
    r = run(live, "provision", "list", "--json")
    assert any(p["site_id"] == "weird" and p["used_at"] is None for p in json.loads(r.stdout))


def test_evidence_pull_then_verify(live, tmp_path) -> None:
    out = tmp_path / "export"
    r = run(live, "evidence", "pull", "--site", "riverside", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "pulled" in r.stderr
    assert (out / "keys.json").exists() and (out / "checkpoint").exists()
    r = run(live, "evidence", "verify", str(out))
    assert r.returncode == 0, r.stdout
    lines = (out / "bundles.jsonl").read_bytes().splitlines()
    lines[0] = lines[0].replace(b'"firewall"', b'"firewalx"', 1)
    (out / "bundles.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    r = run(live, "evidence", "verify", str(out))
    assert r.returncode == 1 and "FAIL E_SIG" in r.stdout
    r = run(live, "evidence", "pull", "--site", "riverside", "--out", str(out))
    assert r.returncode == 2  # will not overwrite without --overwrite


def test_incident_and_order_listing(live) -> None:
    a = live.appliances["rv-app-01"]
    r = run(live, "order", "list", "--appliance", a.id, "--json")
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), list)
    r = run(live, "incident", "list", "--site", "riverside", "--json")
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), list)
    r = run(live, "order", "run", "--appliance", a.id, "--runbook", "NOPE-1", "--host", "dc01")
    assert r.returncode == 2


def _all_commands(group: click.Group, prefix=()):  # noqa: ANN001, ANN202
    for name, cmd in group.commands.items():
        yield cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, (*prefix, name))


def _paths(group: click.Group, prefix=()):  # noqa: ANN001, ANN202
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _paths(cmd, (*prefix, name))


def test_every_command_has_help() -> None:
    runner = CliRunner()
    paths = list(_paths(main))
    assert len(paths) > 40
    for path, cmd in paths:
        assert (cmd.help or "").strip(), f"osiris {' '.join(path)} has no help text"
        r = runner.invoke(main, [*path, "--help"])
        assert r.exit_code == 0, path
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name != "help":
                assert p.help, f"osiris {' '.join(path)} {p.opts[0]} has no help"


REQUIRED_GROUPS = {"site", "appliance", "cred", "runbook", "order", "incident", "evidence",
                   "provision", "partner", "token", "audit", "learn", "learning"}  # fmt: skip


def test_all_groups_present_and_json_on_every_listing() -> None:
    assert REQUIRED_GROUPS <= set(main.commands)
    for path, cmd in _paths(main):
        if path[-1] in ("list", "show"):
            assert any(p.name == "as_json" for p in cmd.params), path


LEARN_KEYS = {"id", "status", "check_id", "detect_runbook_id", "runbook_id", "params", "l2",
              "after_promotion", "approvable", "refusal", "canary_sites", "decided_by", "reason",
              "updated_at"}  # fmt: skip


def seed_pattern(
    db_path,
    pid: str,
    site: str,
    ok: int,
    failed: int,
    status: str = "candidate",
    runbook: str = "RB-WIN-FIREWALL-001",
    check: str = "windows_firewall",
) -> None:
    """A learned pattern with its outcomes, written the way the server's learner writes them
    on ingest (tests/server/test_learning.py drives that path with signed bundles)."""
    import sqlite3

    db = sqlite3.connect(db_path, timeout=10)
    at = "2026-01-01T00:00:00.000Z"
    with db:
        db.execute(
            "INSERT INTO learning_patterns (id, sha256, check_id, detect_runbook_id, runbook_id,"
            " params_json, shape_json, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, '{}', '{}', ?, ?, ?)",
            (pid, pid.lower() * 3, check, runbook, runbook, status, at, at),
        )
        for i in range(ok + failed):
            db.execute(
                "INSERT INTO learning_outcomes VALUES (?, ?, ?, ?, 'L2', ?, ?, ?)",
                (f"sha256:{pid}{i}", pid, site if i % 2 else "riverside", "app_x",
                 1 if i < ok else 0, "healed" if i < ok else "failed", at),
            )  # fmt: skip
    db.close()


def test_learning_candidates_shows_what_the_server_has(live) -> None:
    """Issue 16 (deliberate): `osiris learning candidates` (the old `learn list` still works)
    lists patterns with k/n, not the old per-site successes/failures/percent rows."""
    r = run(live, "learning", "candidates", "--site", "weird", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []  # nothing learned for this site yet, and it says so
    seed_pattern(live.data / "osiris.db", "L1-LRN-0123456789AB", "weird", 9, 1)
    r = run(live, "learning", "candidates", "--site", "weird", "--json")
    rows = json.loads(r.stdout)
    assert [set(x) for x in rows] == [LEARN_KEYS]
    assert rows[0]["l2"]["fraction"] == "9/10" and rows[0]["runbook_id"] == "RB-WIN-FIREWALL-001"
    r = run(live, "learn", "list", "--site", "weird")
    assert r.stdout.splitlines()[1].split("\t")[3:6] == ["9/10", "2", "-"]
    r = run(live, "learning", "show", "L1-LRN-0123456789AB", "--json")
    shown = json.loads(r.stdout)
    assert len(shown["evidence"]) == 10 and shown["rule"]["id"] == "L1-LRN-0123456789AB"
    r = run(live, "learning", "candidates", "--site", "nowhere", "--json")
    assert json.loads(r.stdout) == []
    r = run(live, "learning", "reject", "L1-LRN-0123456789AB", "--reason", "not here", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "rejected", r.stderr
    r = run(live, "learning", "approve", "L1-LRN-0123456789AB", "--yes")
    assert r.returncode == 2 and "rejected, not a candidate" in r.stderr
    seed_pattern(live.data / "osiris.db", "L1-LRN-0123456789AC", "weird", 5, 0)
    r = run(live, "learning", "approve", "L1-LRN-0123456789AC", "--canary-site", "riverside",
            "--soak", "60", "--yes", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["status"], got["canary_sites"], got["soak_s"]) == ("canary", ["riverside"], 60)


def test_cli_runner_stdout_stderr_split(live) -> None:
    r = invoke(live, "site", "show", "missing")
    assert r.exit_code == 2
    assert "osiris: error:" in r.stderr and r.stdout == ""


@pytest.mark.parametrize("argv", [["--help"], ["tui", "--help"], ["demo", "--help"]])
def test_basic_commands(argv) -> None:
    assert CliRunner().invoke(main, argv).exit_code == 0


def test_mac_requests_listed_and_approved_only_with_the_right_fingerprint(live) -> None:
    """The operator compares fingerprints; only the requester's secret collects the code."""
    import httpx

    mac = "aa:bb:cc:dd:00:77"
    secret = {"X-Osiris-Enroll-Secret": "z" * 40}
    first = httpx.get(f"{live.url}/api/v1/provision/{mac}", headers=secret).json()
    fp = first["fingerprint"]
    listed = run(live, "provision", "macs", "--json")
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["mac"] == mac)
    assert row["requester_fingerprint"] == fp and row["status"] == "pending"
    wrong = run(live, "provision", "approve", mac, "--site", "weird", "--fingerprint",
                "0000-0000-0000", "--yes")  # fmt: skip
    assert wrong.returncode == 2 and "no request" in wrong.stderr
    # a prefix of the right fingerprint is not the fingerprint
    short = run(live, "provision", "approve", mac, "--site", "weird", "--fingerprint",
                fp[:19], "--yes")  # fmt: skip
    assert short.returncode == 2
    assert len(fp.replace("-", "")) == 64
    ok = run(live, "provision", "approve", mac, "--site", "weird", "--fingerprint", fp,
             "--yes", "--json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "approved"
    got = httpx.get(f"{live.url}/api/v1/provision/{mac}", headers=secret).json()
    assert got["status"] == "approved" and got["claim_code"].startswith("ocl_")
    # withdraw it so the shared server's fleet stays as the other tests expect
    assert (
        httpx.delete(
            f"{live.url}/api/v1/provision/{mac}", headers={"Authorization": f"Bearer {live.token}"}
        ).status_code
        == 200
    )


def test_cred_add_tls_flags(live) -> None:
    """`cred add` has the WinRM TLS switches the console form has; the server refuses plain
    HTTP towards a non-lab host (exit 2, nothing stored) and takes it for a lab one."""
    args = ["cred", "add", "--site", "riverside", "--kind", "winrm", "--username", "svc",
            "--password-stdin", "--json"]  # fmt: skip
    r = invoke(live, *args, "--host", "tls-off", "--address", "10.1.1.2", "--no-tls",
               input="pw\n")  # fmt: skip
    assert r.exit_code == 2 and "lab" in r.output, r.output
    assert "tls-off" not in invoke(live, "cred", "list", "--site", "riverside").output
    r = invoke(live, *args, "--host", "tls-lab", "--address", "10.1.1.3", "--no-tls",
               "--no-verify-tls", "--lab", input="pw\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["use_tls"] in (False, 0) and out["verify_tls"] in (False, 0)
    r = invoke(live, "cred", "add", "--site", "riverside", "--kind", "ssh_password",
               "--host", "lx9", "--address", "10.1.1.4", "--no-tls")  # fmt: skip
    assert r.exit_code == 2 and "winrm credentials only" in r.output


def test_winrm_trust_options(live, tmp_path) -> None:
    """``cred add/rotate --cert-thumbprint/--ca-bundle/--auth`` (issue 15 item 4): a SHA-1 value
    is the server's clear 400 (exit 2, the SHA-256 hint), a pin is stored normalised, a
    new trust anchor goes with the password again (rotate), and none applies to SSH."""
    sha1, sha256 = "AB" * 20, ":".join(["cd"] * 32)
    base = ("cred", "add", "--site", "riverside", "--kind", "winrm", "--address", "10.1.1.9",
            "--username", "svc", "--password-stdin", "--json")  # fmt: skip
    r = run(live, *base, "--host", "trust-1", "--cert-thumbprint", sha1, input="pw\n")
    assert r.returncode == 2 and "SHA256" in r.stderr, r.stderr  # a 400: bad input
    r = run(live, *base, "--host", "trust-1", "--cert-thumbprint", sha256, "--auth", "kerberos",
            input="pw\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["cert_thumbprint"] == "cd" * 32 and out["auth"] == "kerberos"
    pem = tmp_path / "bad.pem"
    pem.write_text("not a certificate\n")
    r = run(live, "cred", "rotate", "--site", "riverside", out["id"], "--password-stdin",
            "--ca-bundle", str(pem), "--yes", input="pw2\n")  # fmt: skip
    assert r.returncode == 2 and "ca_bundle" in r.stderr
    r = run(live, "cred", "add", "--site", "riverside", "--host", "trust-2", "--kind",
            "ssh_password", "--address", "10.1.1.8", "--username", "root", "--password-stdin",
            "--cert-thumbprint", sha256, input="pw\n")  # fmt: skip
    assert r.returncode == 2 and "winrm credentials only" in r.stderr
    assert run(live, "cred", "rm", "--site", "riverside", out["id"], "--yes").returncode == 0


def test_cred_sudo_and_become_password(live, tmp_path) -> None:
    """``cred add --sudo --become-password-stdin`` (issue 15 item 2): the login key and the sudo
    password both come from files/stdin, never argv; the answer says sudo and masks the secret;
    rotate with only --become-password-stdin changes the sudo password alone; --sudo on WinRM
    and a become password without --sudo are usage errors, nothing stored."""
    key = tmp_path / "id"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    base = ("cred", "add", "--site", "riverside", "--kind", "ssh_key", "--address", "10.1.2.9",
            "--username", "osiris", "--key-file", str(key), "--json")  # fmt: skip
    r = run(live, *base, "--host", "sudo-1", "--sudo", "--become-password-stdin",
            input="Sudo-Pw-1\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sudo"] is True and "Sudo-Pw-1" not in r.stdout + r.stderr
    r = run(live, "cred", "rotate", "--site", "riverside", out["id"], "--become-password-stdin",
            "--yes", "--json", input="Sudo-Pw-2\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == out["version"] + 1
    shown = run(live, "cred", "reveal", "--site", "riverside", out["id"], "--yes")
    assert shown.returncode == 0, shown.stderr  # the live token is an admin's
    assert json.loads(shown.stdout)["become_password"] == "Sudo-Pw-2"
    r = run(live, *base, "--host", "sudo-2", "--become-password-stdin", input="x\n")
    assert r.returncode == 2 and "only with --sudo" in r.stderr
    r = run(live, "cred", "add", "--site", "riverside", "--kind", "winrm", "--host", "sudo-3",
            "--address", "10.1.2.8", "--username", "a", "--password-stdin", "--sudo",
            input="pw\n")  # fmt: skip
    assert r.returncode == 2 and "ssh credentials only" in r.stderr
    listing = run(live, "cred", "list", "--site", "riverside").stdout
    assert "sudo-2" not in listing and "sudo-3" not in listing
    assert run(live, "cred", "rm", "--site", "riverside", out["id"], "--yes").returncode == 0
