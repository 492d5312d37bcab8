"""The NixOS modules, package and appliance image, checked with a real ``nix-instantiate``.

What is real here and what is not (no nixpkgs tree exists on this machine or in CI):

- every ``.nix`` file is parsed by Nix itself (``nix-instantiate --parse``);
- the modules are *evaluated* by Nix (``--eval --strict --json``) against ``nix/tests/stub-lib.nix``
  and ``stub-pkgs.nix`` through ``nix/tests/eval-module.nix``: option defaults, user values, the
  generated types' checks, ``mkIf`` and assertions are real evaluation of our code; NixOS's own
  modules (systemd unit rendering, iso-image.nix, their defaults) are NOT evaluated;
- the ``agent.toml`` text the module writes is parsed with ``tomllib`` and loaded by the agent's own
  ``load_config`` from a real file, so "the module's defaults are valid agent config" is tested
  end to end; the image checks run on the image's evaluated config plus a grep of its source.

CI must ``apt-get install -y nix-bin`` (Nix 2.8 works); without it these tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from osiris_agent import nixgen
from osiris_agent.config import AgentConfig, ConfigError, load_config, schema

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "nix" / "tests" / "eval-module.nix"
AGENT = ROOT / "nix" / "modules" / "osiris-agent.nix"
SERVER = ROOT / "nix" / "modules" / "osiris-server.nix"
OPTIONS = ROOT / "nix" / "modules" / "agent-options.nix"
# what the live ISO (iso/appliance.nix) and the installed system (iso/installed.nix) share; those
# two are evaluated in tests/test_nix_flake.py
IMAGE = ROOT / "iso" / "common.nix"
IMAGES = sorted((ROOT / "iso").glob("*.nix"))
NIX = shutil.which("nix-instantiate")

needs_nix = pytest.mark.skipif(
    NIX is None, reason="nix-instantiate not installed (apt-get install -y nix-bin)"
)

URL = "https://cc.example-msp.com"


class NixError(Exception):
    """nix-instantiate failed; the message is its stderr."""


def _nix(*args: str) -> str:
    assert NIX is not None
    p = subprocess.run([NIX, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    if p.returncode != 0:
        raise NixError(p.stderr)
    return p.stdout


def evaluate(module: Path, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``module`` with the user definitions ``user`` (JSON-able) via eval-module.nix."""
    expr = (
        "{ userJSON }: import " + str(EVAL) + " { modulePath = " + str(module) + ";"
        " userConfig = builtins.fromJSON userJSON; }"
    )
    out = _nix(
        "--eval", "--strict", "--json", "-E", expr, "--argstr", "userJSON", json.dumps(user or {})
    )
    return json.loads(out)


def agent(**cfg: Any) -> dict[str, Any]:
    body = {"enable": True, "settings": {"server": {"url": URL}}}
    for k, v in cfg.items():
        if k == "settings":
            for section, values in v.items():
                body["settings"].setdefault(section, {}).update(values)
        else:
            body[k] = v
    return evaluate(AGENT, {"services": {"osiris-agent": body}})


def toml_of(result: dict[str, Any]) -> str:
    return result["config"]["environment"]["etc"]["osiris/agent.toml"]["text"]


def nix_files() -> list[Path]:
    return sorted(
        [ROOT / "flake.nix", *(ROOT / "nix").rglob("*.nix"), *(ROOT / "iso").rglob("*.nix")]
    )


# --- parsing ---------------------------------------------------------------------------------


def test_there_are_nix_files_to_check() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in nix_files()}
    assert {
        "nix/package.nix",
        "nix/modules/osiris-agent.nix",
        "nix/modules/agent-options.nix",
        "nix/modules/osiris-server.nix",
        "nix/tests/stub-lib.nix",
        "iso/appliance.nix",
        "iso/common.nix",
        "iso/installed.nix",
        "nix/tests/vm/first-boot-enrolment.nix",
        "flake.nix",
    } <= names


@needs_nix
@pytest.mark.parametrize("path", nix_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_nix_file_parses(path: Path) -> None:
    _nix("--parse", str(path))


@needs_nix
def test_parse_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "broken.nix"
    bad.write_text("{ a = 1; b = ")
    with pytest.raises(NixError, match="syntax error"):
        _nix("--parse", str(bad))


# --- the generated options file ----------------------------------------------------------------


def test_generated_options_file_is_in_sync() -> None:
    assert OPTIONS.read_text() == nixgen.render(), (
        "nix/modules/agent-options.nix is stale: run "
        "`python -m osiris_agent.nixgen > nix/modules/agent-options.nix`"
    )


def test_nix_string_escaping() -> None:
    assert nixgen.nix_string('a"b\\c${d}$e\n') == '"a\\"b\\\\c\\${d}$e\\n"'
    with pytest.raises(ValueError):
        nixgen.nix_string("\x01")


@needs_nix
def test_generated_option_types_and_defaults_match_schema() -> None:
    """Nix evaluates every option: default, and whether its type accepts/rejects bound values."""
    probes = []
    for row in schema():
        section, name = row["key"].split(".")
        o = f"opts.{section}.{name}"
        checks = {"null": f"{o}.type.check null"}
        if row["type"] == "int" and row["min"] is not None:
            lo, hi = row["min"], row["max"]
            checks |= {
                "lo": f"{o}.type.check {lo}",
                "hi": f"{o}.type.check {hi}",
                "below": f"{o}.type.check ({lo} - 1)",
                "above": f"{o}.type.check ({hi} + 1)",
                "str": f'{o}.type.check "{lo}"',
            }
        if row["choices"]:
            checks |= {c: f'{o}.type.check "{c}"' for c in row["choices"]}
            checks["bogus"] = f'{o}.type.check "bogus"'
        body = " ".join(f"{k} = {v};" for k, v in checks.items())
        probes.append(
            f'"{row["key"]}" = {{ hasDefault = {o} ? default; '
            f"default = {o}.default or null; {body} }};"
        )
    expr = (
        f"let lib = import {ROOT}/nix/tests/stub-lib.nix;"
        f" opts = import {OPTIONS} {{ inherit lib; }}; in {{ " + " ".join(probes) + " }"
    )
    got = json.loads(_nix("--eval", "--strict", "--json", "-E", expr))
    assert set(got) == {r["key"] for r in schema()}
    for row in schema():
        g = got[row["key"]]
        if row["required"]:
            assert not g["hasDefault"], row["key"]
            assert g["null"] is False, row["key"]
        elif row["default"] is None or isinstance(row["default"], dict):
            assert g["hasDefault"] and g["default"] is None and g["null"], row["key"]
        else:
            assert g["default"] == row["default"], row["key"]
            assert g["null"] is False, row["key"]
        if "lo" in g:
            assert (g["lo"], g["hi"], g["below"], g["above"], g["str"]) == (
                True,
                True,
                False,
                False,
                False,
            ), row["key"]
        for c in row["choices"] or []:
            assert g[c] is True
        if row["choices"]:
            assert g["bogus"] is False


# --- the agent module --------------------------------------------------------------------------


@needs_nix
def test_module_defaults_are_valid_agent_config(tmp_path: Path) -> None:
    result = agent()
    assert result["failedAssertions"] == []
    path = tmp_path / "agent.toml"
    path.write_text(toml_of(result))
    cfg = load_config(path)  # the agent's own reader, from a real file
    assert cfg == AgentConfig.from_dict(
        {"server": {"url": URL}, "agent": {"status_dir": "/var/lib/osiris-status"}}
    )  # the one key the module always writes: the technician's snapshot is outside state_dir
    # Derived keys were left out, so the agent derived them from state_dir.
    assert cfg.agent.key_file == "/var/lib/osiris/appliance.key"


@needs_nix
def test_module_values_round_trip_through_toml(tmp_path: Path) -> None:
    weird = 'm "q" \\ back ü ${x}'
    settings = {
        "server": {"ca_file": "/etc/osiris/ca.pem"},
        "agent": {"state_dir": "/srv/osiris", "jitter_pct": 25, "lab": False},
        "window": {"days": ["sat", "sun"], "start": "23:30", "timezone": "America/New_York"},
        "deployment": {"mode": "reseller", "reseller_id": "acme-1"},
        "reseller": {"syslog_target": "tcp://10.0.0.5:6514"},
        "ntp": {"servers": ["time.example.org:123", "[2001:db8::1]:123"], "min_good": 1},
        "outbox": {"max_bytes": 1 << 35},
        "healing": {"l2_enabled": True, "l2_base_url": "https://llm.example", "l2_model": weird},
    }
    result = agent(settings=settings)
    assert result["failedAssertions"] == []
    path = tmp_path / "agent.toml"
    path.write_text(toml_of(result))
    cfg = load_config(path)
    assert cfg.healing.l2_model == weird
    assert cfg.window.days == ("sat", "sun")
    assert cfg.ntp.servers == ("time.example.org:123", "[2001:db8::1]:123")
    assert cfg.outbox.max_bytes == 1 << 35
    assert cfg.agent.key_file == "/srv/osiris/appliance.key"
    expected = {s: {"server": {"url": URL}}.get(s, {}) | v for s, v in settings.items()}
    expected["server"]["url"] = URL
    expected["agent"]["status_dir"] = "/var/lib/osiris-status"  # the module always names it
    assert cfg == AgentConfig.from_dict(expected)
    # The unit writes to the custom state dir and to the technician's status dir.
    svc = result["config"]["systemd"]["services"]["osiris-agent"]["serviceConfig"]
    assert svc["ReadWritePaths"] == ["/srv/osiris", "/var/lib/osiris-status"]


@needs_nix
def test_status_snapshot_dir_is_for_the_tech_group_only() -> None:
    """status.json goes to a 2750 osiris:osiris-tech dir outside the 0700 state dir, and the
    technician is in osiris-tech (the console reads only that file: tests/agent/
    test_status_snapshot.py)."""
    result = agent()
    assert result["failedAssertions"] == []
    conf = result["config"]
    assert (
        "d /var/lib/osiris-status 2750 osiris osiris-tech -" in conf["systemd"]["tmpfiles"]["rules"]
    )
    assert "osiris-tech" in conf["users"]["groups"]
    assert 'status_dir = "/var/lib/osiris-status"' in toml_of(result)
    tech = image()["config"]["users"]["users"]["tech"]
    assert "osiris-tech" in tech["extraGroups"]


@needs_nix
def test_module_refuses_out_of_range_and_unknown_options() -> None:
    with pytest.raises(NixError, match="jitter_pct' is not of type"):
        agent(settings={"agent": {"jitter_pct": 99}})
    with pytest.raises(NixError, match="does not exist"):
        agent(settings={"agent": {"jitter_percent": 10}})
    with pytest.raises(NixError, match="server.url' is used but not defined"):
        evaluate(AGENT, {"services": {"osiris-agent": {"enable": True}}})


@needs_nix
def test_module_assertions_mirror_cross_checks() -> None:
    result = agent(settings={"deployment": {"mode": "reseller"}})
    assert any("reseller_id" in m for m in result["failedAssertions"])
    # …and the agent itself agrees the same config is invalid.
    with pytest.raises(ConfigError, match="reseller_id"):
        AgentConfig.from_dict(tomllib.loads(toml_of(result)))


@needs_nix
def test_disabled_module_defines_nothing() -> None:
    assert evaluate(AGENT, {})["config"] == {}


@needs_nix
def test_agent_unit_is_hardened_and_not_root() -> None:
    result = agent()
    conf = result["config"]
    svc = conf["systemd"]["services"]["osiris-agent"]["serviceConfig"]
    assert svc["ExecStart"].endswith("/bin/osiris-agent run --config /etc/osiris/agent.toml")
    assert svc["User"] == "osiris" and svc["User"] != "root"
    assert svc["DynamicUser"] is False
    assert svc["StateDirectory"] == "osiris"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "RestrictSUIDSGID"):
        assert svc[key] is True, key
    assert svc["ProtectSystem"] == "strict"
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(svc["RestrictAddressFamilies"])
    assert svc["CapabilityBoundingSet"] == ["CAP_NET_ADMIN"]  # for nft only
    assert "IPAddressDeny" not in svc  # only when ipAddressAllow is given
    assert conf["users"]["users"]["osiris"]["isSystemUser"] is True
    # The appliance never listens: the module opens no port.
    assert "firewall" not in conf.get("networking", {})
    # Privileged actions go through polkit, for listed units and verbs only.
    rule = conf["security"]["polkit"]["extraConfig"]
    assert '"osiris-switch-system.service"' in rule and '"nftables.service"' in rule
    assert '"stop"' not in rule
    # The root switch unit exists and cannot be restarted away by a switch.
    sw = conf["systemd"]["services"]["osiris-switch-system"]
    assert sw["serviceConfig"]["User"] == "root" and sw["restartIfChanged"] is False
    # First boot: the agent unit has no "enrolled" condition (run waits for a claim code); the
    # setup console runs on tty1 as the agent user until pins.json exists.
    assert "unitConfig" not in conf["systemd"]["services"]["osiris-agent"]
    tty = conf["systemd"]["services"]["osiris-setup-console"]
    assert tty["unitConfig"]["ConditionPathExists"] == "!/var/lib/osiris/pins.json"
    ts = tty["serviceConfig"]
    assert ts["ExecStart"].endswith("/bin/osiris-agent setup --config /etc/osiris/agent.toml")
    assert ts["User"] == "osiris" and ts["TTYPath"] == "/dev/tty1"
    assert ts["StandardInput"] == "tty" and ts["NoNewPrivileges"] is True


@needs_nix
def test_switch_unit_reverifies_the_signed_release() -> None:
    """RB-NIX-GEN-001's root unit runs nix/modules/osiris-switch-system.sh (exercised for real
    in tests/core/test_release.py) with the real verifier, on a request file the agent writes,
    against keys the agent cannot write."""
    sw = agent()["config"]["systemd"]["services"]["osiris-switch-system"]
    start = sw["serviceConfig"]["ExecStart"]
    assert [a.strip("'") for a in start.split()[1:]] == [
        "/var/lib/osiris/switch/request.json", "/var/lib/osiris-switch",
        "/var/lib/osiris-switch/trusted-keys", "/var/lib/osiris/pins.json",
    ]  # fmt: skip
    assert sw["unitConfig"]["ConditionPathExists"] == "/var/lib/osiris/switch/request.json"
    assert sw["environment"]["OSIRIS_RELEASE_VERIFY"].endswith("-m osiris_core.release")
    assert "/desired" not in start  # the old "looks like a store path" protocol is gone
    text = (ROOT / "nix" / "modules" / "osiris-switch-system.sh").read_text()
    assert "switch-request" in text and "$verify" in text
    keyed = agent(privileges={"releaseKeys": ["osiris/release+01020304+AQID"]})
    start = keyed["config"]["systemd"]["services"]["osiris-switch-system"]["serviceConfig"]
    keys_file = start["ExecStart"].split()[3].strip("'")
    assert keys_file.startswith("/nix/store/")  # the configured keys, in the store


@needs_nix
def test_agent_unit_without_net_admin_and_with_ip_allowlist() -> None:
    result = agent(
        privileges={"netAdmin": False, "systemSwitch": False},
        network={"ipAddressAllow": ["203.0.113.10/32", "192.168.10.0/24"]},
    )
    svc = result["config"]["systemd"]["services"]["osiris-agent"]["serviceConfig"]
    assert svc["CapabilityBoundingSet"] == [""] and svc["AmbientCapabilities"] == []
    assert "AF_NETLINK" not in svc["RestrictAddressFamilies"]
    assert svc["IPAddressDeny"] == "any"
    assert svc["IPAddressAllow"] == ["localhost", "203.0.113.10/32", "192.168.10.0/24"]
    assert "osiris-switch-system" not in result["config"]["systemd"]["services"]


@needs_nix
def test_egress_allowlist_is_derived_from_settings(tmp_path: Path) -> None:
    result = agent(
        settings={
            "server": {"url": "https://203.0.113.10:8443/api"},
            "egress": {"resolvers": ["192.168.10.1", "fd00:1::53"]},
        },
        egress={"enable": True, "lanPrefixes": ["192.168.10.0/24", "fd00:1::/64"]},
    )
    assert result["failedAssertions"] == []
    conf = result["config"]
    table = conf["networking"]["nftables"]["tables"]["osiris_egress"]["content"]
    assert "policy drop" in table
    # DNS only to the configured resolvers: no "port 53 to anyone" rule (an exfiltration path)
    dns_rules = [ln.strip() for ln in table.splitlines() if "dport 53" in ln]
    assert dns_rules == [
        "ip daddr @dns_v4 meta l4proto { udp, tcp } th dport 53 accept",
        "ip6 daddr @dns_v6 meta l4proto { udp, tcp } th dport 53 accept",
    ]
    assert "set dns_v4 { type ipv4_addr; elements = { 192.168.10.1 } }" in table
    assert "set dns_v6 { type ipv6_addr; elements = { fd00:1::53 } }" in table
    assert conf["networking"]["nameservers"] == ["192.168.10.1", "fd00:1::53"]
    assert (
        "set hosts_v4 { type ipv4_addr; flags interval, timeout; elements = { 203.0.113.10 }"
        in table
    )
    assert "elements = { 192.168.10.0/24 }" in table and "elements = { fd00:1::/64 }" in table
    assert "tcp dport { 22, 5985, 5986 }" in table
    # NTP servers are names: the agent resolves them itself (no shell timer), through the
    # resolvers only, which its unit may reach
    assert "osiris-egress-refresh" not in json.dumps(conf["systemd"])
    path = tmp_path / "agent.toml"
    path.write_text(toml_of(result))
    loaded = load_config(path)
    assert set(loaded.egress.hosts) == set(loaded.ntp.servers)  # the default NTP names
    assert "203.0.113.10" not in loaded.egress.hosts  # addresses sit in the table itself
    assert loaded.egress.resolvers == ("192.168.10.1", "fd00:1::53")
    off = agent()["config"]  # off unless enabled
    assert "osiris_egress" not in json.dumps(off.get("networking", {}))
    path.write_text(toml_of(agent()))
    assert load_config(path).egress.hosts == ()  # nothing to refresh


# --- the server module -------------------------------------------------------------------------


@needs_nix
def test_server_module_runs_serve_with_tls_and_init_on_first_start() -> None:
    from osiris_server.cli import main as server_cli

    user = {
        "enable": True,
        "listen": "0.0.0.0:443",
        "tls": {
            "certFile": "/etc/ssl/cc.crt",
            "keyFile": "/etc/ssl/cc.key",
            "clientCaFile": "/etc/ssl/ca.pem",
        },
    }
    result = evaluate(SERVER, {"services": {"osiris-server": user}})
    assert result["failedAssertions"] == []
    svc = result["config"]["systemd"]["services"]["osiris-server"]["serviceConfig"]
    argv = svc["ExecStart"].replace("'", "").split()
    assert argv[0].endswith("/bin/osiris-server") and argv[1] == "serve"
    assert argv[argv.index("--data") + 1] == "/var/lib/osiris-server"
    assert argv[argv.index("--listen") + 1] == "0.0.0.0:443"
    flags = {a for a in argv if a.startswith("--")}
    assert flags == {"--data", "--listen", "--tls-cert", "--tls-key", "--client-ca"}
    serve_opts = {o for p in server_cli.commands["serve"].params for o in p.opts}
    assert flags <= serve_opts  # every flag the unit passes exists on the real CLI
    assert svc["ExecStartPre"]
    assert svc["User"] == "osiris-server" and svc["NoNewPrivileges"] is True
    assert svc["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]  # port 443
    assert "tls.key:/etc/ssl/cc.key" in svc["LoadCredential"]
    assert result["config"]["networking"]["firewall"]["allowedTCPPorts"] == []


@needs_nix
def test_server_module_refuses_plain_http_off_loopback() -> None:
    result = evaluate(
        SERVER, {"services": {"osiris-server": {"enable": True, "listen": "0.0.0.0:8080"}}}
    )
    assert any("without TLS" in m for m in result["failedAssertions"])
    ok = evaluate(SERVER, {"services": {"osiris-server": {"enable": True}}})
    assert ok["failedAssertions"] == []
    assert ok["config"]["systemd"]["services"]["osiris-server"]["serviceConfig"][
        "CapabilityBoundingSet"
    ] == [""]


# --- the appliance image -----------------------------------------------------------------------


def image(**extra: Any) -> dict[str, Any]:
    body = {"serverUrl": URL, "dnsResolvers": ["192.168.10.1"], **extra}
    return evaluate(IMAGE, {"osiris": {"appliance": body}})


@needs_nix
def test_image_opens_no_ports_and_has_no_autologin_or_nopasswd() -> None:
    """Evaluated: what appliance.nix itself sets (not NixOS defaults or iso-image.nix)."""
    result = image()
    conf = result["config"]
    # The firewall is services.osiris-appliance's baseline (RB-NIX-FW-001 pins what the host
    # runs; its ruleset is checked in tests/test_nix_appliance.py); NixOS's loaders are off.
    assert conf["networking"]["firewall"] == {"enable": False}
    assert conf["networking"]["nftables"] == {"enable": False}
    assert conf["services"]["osiris-appliance"] == {
        "enable": True, "firewall": {"sshAllowFrom": []}
    }  # fmt: skip
    assert conf["services"]["getty"]["autologinUser"] is None
    assert conf["security"]["sudo"]["wheelNeedsPassword"] is True
    ssh = conf["services"]["openssh"]
    assert ssh["openFirewall"] is False
    assert ssh["settings"]["PasswordAuthentication"] is False
    assert ssh["settings"]["PermitRootLogin"] == "no"
    assert (
        "journald" in conf["services"]
        and "Storage=persistent" in conf["services"]["journald"]["extraConfig"]
    )
    dump = json.dumps(conf)
    assert "NOPASSWD" not in dump
    assert '"keys"' not in dump  # no users.users.*.openssh.authorizedKeys.keys
    assert not any("installation-cd" in i for i in result["imports"])
    assert any(i.endswith("nix/modules/osiris-agent.nix") for i in result["imports"])
    # First boot: the provisioning stick's mount point is where the agent looks.
    agent = conf["services"]["osiris-agent"]["settings"]
    assert agent["enrolment"]["provision_dirs"] == ["/run/osiris-provision"]
    rule = conf["services"]["udev"]["extraRules"]
    assert 'ID_FS_LABEL}=="OSIRIS-PROV"' in rule and "uid=osiris" in rule
    assert "/run/osiris-provision" in rule and "noexec" in rule


def test_image_source_has_no_baked_in_secrets_or_autologin() -> None:
    """Grep of the source, for what evaluation can't see (e.g. text in comments is excluded)."""
    code = "\n".join(
        line.split("#", 1)[0] for image in IMAGES for line in image.read_text().splitlines()
    )
    for bad in (
        "NOPASSWD",
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2",
        "initialPassword",
        'autologinUser = "',
    ):
        assert bad not in code, bad


@needs_nix
def test_image_ssh_port_opens_only_towards_given_networks() -> None:
    """The image hands sshAllowFrom to the appliance module's baseline; the rules it writes from
    it are checked on the evaluated baseline in tests/test_nix_appliance.py."""
    conf = image(sshAllowFrom=["192.168.10.0/24", "fd00:1::/64"])["config"]
    fw = conf["services"]["osiris-appliance"]["firewall"]
    assert fw == {"sshAllowFrom": ["192.168.10.0/24", "fd00:1::/64"]}
    assert (
        "firewall" not in conf["services"]["openssh"]
        and conf["services"]["openssh"]["openFirewall"] is False
    )


@needs_nix
def test_egress_refresh_by_the_agent_needs_net_admin_and_reaches_the_resolvers() -> None:
    base = {
        "settings": {
            "egress": {
                "resolvers": ["192.168.10.1"],
                "hosts": ["extra.example"],
                "entry_timeout_s": 1800,
            },
        },  # fmt: skip
        "egress": {"enable": True, "allowedHosts": ["cache.nixos.org"]},
    }
    result = agent(**base, network={"ipAddressAllow": ["203.0.113.10/32"]})
    assert result["failedAssertions"] == []
    svc = result["config"]["systemd"]["services"]["osiris-agent"]["serviceConfig"]
    assert svc["IPAddressAllow"] == ["localhost", "203.0.113.10/32", "192.168.10.1"]
    assert "CAP_NET_ADMIN" in svc["AmbientCapabilities"]
    toml = toml_of(result)
    assert '"extra.example"' in toml and '"cache.nixos.org"' in toml
    assert "entry_timeout_s = 1800" in toml
    no_cap = agent(**base, privileges={"netAdmin": False})
    assert any("needs privileges.netAdmin" in m for m in no_cap["failedAssertions"])


@needs_nix
def test_egress_with_host_names_needs_resolvers() -> None:
    """Names to resolve but DNS closed to every host: refused at evaluation, not at 2 a.m."""
    result = agent(egress={"enable": True})  # the default NTP servers are names
    assert any("settings.egress.resolvers is empty" in m for m in result["failedAssertions"])


@needs_nix
def test_image_requires_dns_resolvers() -> None:
    with pytest.raises(NixError, match="dnsResolvers' is used but not defined"):
        evaluate(IMAGE, {"osiris": {"appliance": {"serverUrl": URL}}})


@needs_nix
def test_image_requires_a_server_url() -> None:
    with pytest.raises(NixError, match="serverUrl' is used but not defined"):
        evaluate(IMAGE, {"osiris": {"appliance": {"dnsResolvers": ["192.168.10.1"]}}})


@needs_nix
def test_image_agent_settings_are_valid_agent_config(tmp_path: Path) -> None:
    """Feed the image's services.osiris-agent definitions into the agent module; load the TOML."""
    img = image()["config"]["services"]["osiris-agent"]
    result = evaluate(AGENT, {"services": {"osiris-agent": img}})
    assert result["failedAssertions"] == []
    conf = result["config"]
    assert "osiris_egress" in conf["networking"]["nftables"]["tables"]
    path = tmp_path / "agent.toml"
    path.write_text(toml_of(result))
    assert load_config(path).server.url == URL


# --- the package's source: no lab on the appliance (DESIGN §6) ---------------------------------

PACKAGE_SOURCE = ROOT / "nix" / "tests" / "package-source.nix"
PRODUCTION = ("osiris_core", "osiris_agent", "osiris_server", "osiris_tui")


def _walk(root: Path) -> list[tuple[str, str]]:
    """Every (absolute path, Nix file type) under ``root``; .git and .venv listed, not entered."""
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = Path(dirpath, d)
            out.append((str(p), "symlink" if p.is_symlink() else "directory"))
        for f in filenames:
            p = Path(dirpath, f)
            out.append((str(p), "symlink" if p.is_symlink() else "regular"))
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv")]
    return out


def package_source(root: Path = ROOT) -> dict[str, Any]:
    """What nix/package.nix's ``src`` keeps of ``root``: its own filter, evaluated by Nix.

    Nix answers per entry; a directory the filter refuses drops everything below it, as real
    ``cleanSourceWith`` does. Returns {"root", "files": kept regular files relative to the root,
    "refused": refused entries relative to the root, "importsCheck", "postInstall"}.
    """
    entries = _walk(root)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump([{"path": p, "type": t} for p, t in entries], f)
        f.flush()
        out = _nix(
            "--eval", "--strict", "--json", str(PACKAGE_SOURCE), "--argstr", "entriesFile", f.name
        )
    result = json.loads(out)
    verdict = {
        Path(p).relative_to(root): keep
        for (p, _), keep in zip(entries, result["keep"], strict=True)
    }
    files = set()
    for (p, t), keep in zip(entries, result["keep"], strict=True):
        rel = Path(p).relative_to(root)
        if t == "regular" and keep and all(verdict.get(a, True) for a in rel.parents):
            files.add(rel.as_posix())
    refused = {rel.as_posix() for rel, keep in verdict.items() if not keep}
    return {**result, "files": files, "refused": refused}


def _find_packages(tree: Path) -> list[str]:
    """The packages setuptools puts in a build of ``tree``: pyproject's [tool.setuptools.packages
    .find], whose defaults (where=["."], namespaces=true) mean find_namespace_packages."""
    from setuptools import find_namespace_packages

    find = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    return sorted(find_namespace_packages(where=str(tree), include=find["find"]["include"]))


@needs_nix
def test_appliance_package_source_leaves_the_lab_out(tmp_path: Path) -> None:
    """The Nix package (the appliance image's, via the agent module's default) holds no
    osiris_lab file, every production file is still there, and the build finds no lab package."""
    assert "callPackage ../package.nix" in AGENT.read_text()
    assert "package =" not in IMAGE.read_text().split("services.osiris-agent", 1)[1]
    src = package_source()
    assert src["root"] == str(ROOT)
    assert "osiris_lab" in src["refused"]
    assert not [f for f in src["files"] if f.startswith("osiris_lab/") or "/lab/" in f]
    tracked = subprocess.run(
        ["git", "ls-files", *PRODUCTION, "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked and set(tracked) <= src["files"]
    assert "osiris_lab" not in src["importsCheck"]
    assert "osiris_lab" in src["postInstall"] and "exit 1" in src["postInstall"]
    # Build the tree the Nix build would see and ask setuptools which packages it holds.
    tree = tmp_path / "src"
    for rel in src["files"]:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tree / rel)
    packages = _find_packages(tree)
    assert {p.split(".")[0] for p in packages} == set(PRODUCTION)
    assert not [p for p in packages if p.endswith(".lab") or ".lab." in p]


@needs_nix
def test_package_source_check_can_fail(tmp_path: Path) -> None:
    """The same evaluation over a tree with lab code under the agent keeps it — it would show."""
    for rel in ("pyproject.toml", "osiris_lab/farm.py", "osiris_agent/lab/wsman.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    src = package_source(tmp_path)
    assert "osiris_lab" in src["refused"] and "osiris_lab/farm.py" not in src["files"]
    assert "osiris_agent/lab/wsman.py" in src["files"]


def test_wheel_ships_the_lab_as_its_own_package() -> None:
    """The Python wheel keeps osiris_lab for `osiris demo`, as a top-level package of its own:
    nothing lab-ish under a production package (DESIGN §1)."""
    packages = _find_packages(ROOT)
    assert "osiris_lab" in packages
    for p in packages:
        top, *rest = p.split(".")
        assert top in {*PRODUCTION, "osiris_lab"}, p
        assert top == "osiris_lab" or "lab" not in rest, p


# --- the flake ---------------------------------------------------------------------------------


@needs_nix
def test_flake_modules_are_the_evaluated_module_files() -> None:
    """The flake's nixosModules name exactly the module files the stub evaluates here (its
    outputs are lazy: reading nixosModules needs no nixpkgs). Building or `nix flake check`
    needs nixpkgs and a network; nix/README.md says what ran where."""
    expr = (
        f"builtins.mapAttrs (n: p: toString p) ((import {ROOT}/flake.nix).outputs"
        " { self = {}; nixpkgs = {}; }).nixosModules"
    )
    mods = json.loads(_nix("--eval", "--strict", "--json", "-E", expr))
    assert mods == {
        "osiris-agent": str(AGENT),
        "osiris-server": str(SERVER),
        "appliance": str(ROOT / "nix" / "modules" / "osiris-appliance.nix"),
    }
    assert agent()["failedAssertions"] == []  # the same file, enabled, evaluates clean
