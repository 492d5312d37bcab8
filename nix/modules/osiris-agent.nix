# services.osiris-agent — the Osiris appliance agent.
#
# settings.<section>.<key> mirrors /etc/osiris/agent.toml key for key; those options are
# generated into ./agent-options.nix from osiris_agent/config.py (do not hand-edit them).
# The module writes the TOML file itself (pure Nix, no IFD) and runs
# `osiris-agent run --config /etc/osiris/agent.toml` as the unprivileged user `osiris`.
#
# Privileges (lessons.md A7: the old hardened unit could not run systemctl, nft or
# nixos-rebuild at all; B8: the image ran the agent as root). The agent is never root and
# NoNewPrivileges=true (so sudo/setuid could not work anyway). What the appliance's own
# runbooks need, and how each is granted:
#   systemctl start/restart/reload <unit>   polkit rule, only for privileges.units
#   timedatectl set-ntp true                polkit rule (privileges.setNtp)
#   nft list ruleset / nft -f baseline      ambient CAP_NET_ADMIN (privileges.netAdmin)
#   egress allowlist refresh (nft -f -)     the same capability
#   switch the system closure (nix-env --set + switch-to-configuration): needs real root, so it
#     is a separate root oneshot unit, osiris-switch-system.service, that the agent may only
#     *start* (polkit); it reads a switch request from <state_dir>/switch/request.json that
#     must carry a release document (osiris.release/1) signed by a trusted key — the unit
#     verifies that signature itself (privileges.releaseKeys, else the release key the agent
#     pinned at enrolment — the order key only if it pinned none — copied once into root's own
#     state) — never "looks like a system".
# The appliance never listens: this module opens no firewall port.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types;
  cfg = config.services.osiris-agent;
  s = cfg.settings;

  configPath = "/etc/osiris/agent.toml";

  # --- agent.toml, written in pure Nix ------------------------------------------------------
  # null = key absent (TOML has no null), so the agent applies its own/derived default.
  # agent.status_dir is always written: the module owns where the technician's snapshot goes.
  # With egress.enable the agent refreshes the allowlist itself (osiris_agent/egress_refresh.py):
  # egress.hosts is always the names the table allows (an element's lifetime is
  # settings.egress.entry_timeout_s).
  egressSettings = s.egress // lib.optionalAttrs cfg.egress.enable {
    hosts = lib.unique ((if s.egress.hosts == null then [ ] else s.egress.hosts) ++ hostNames);
  };
  cleanSettings = lib.filterAttrs (_: body: body != { })
    (lib.mapAttrs (_: body: lib.filterAttrs (_: v: v != null) body)
      (s // { agent = s.agent // { status_dir = statusDir; }; egress = egressSettings; }));

  # builtins.toJSON of a string is a valid TOML basic string (same escapes: \" \\ \n \uXXXX).
  tomlValue = v:
    if builtins.isBool v then (if v then "true" else "false")
    else if builtins.isInt v then toString v
    else if builtins.isString v then builtins.toJSON v
    else if builtins.isList v then "[" + lib.concatMapStringsSep ", " tomlValue v + "]"
    else throw "services.osiris-agent: cannot write a ${builtins.typeOf v} to agent.toml";

  tomlText =
    "# Written by the NixOS module services.osiris-agent; change the options, not this file.\n"
    + lib.concatStrings (lib.mapAttrsToList
      (section: body:
        "\n[${section}]\n"
        + lib.concatStrings (lib.mapAttrsToList (k: v: "${k} = ${tomlValue v}\n") body))
      cleanSettings);

  # --- hosts the agent talks to, derived from the settings so they cannot drift ------------
  urlHost = url:
    let m = builtins.match "[a-z]+://([[]([0-9A-Fa-f:.]+)[]]|([^/:?#]+))(:[0-9]+)?([/?#].*)?" url;
    in if m == null then null
       else if builtins.elemAt m 1 != null then builtins.elemAt m 1 else builtins.elemAt m 2;
  ntpHost = srv:
    let m = builtins.match "[[]([0-9A-Fa-f:.]+)[]](:[0-9]+)?|([^:]+)(:[0-9]+)?" srv;
    in if m == null then srv
       else if builtins.elemAt m 0 != null then builtins.elemAt m 0 else builtins.elemAt m 2;
  settingHosts =
    builtins.filter (h: h != null)
      ([ (urlHost s.server.url) ]
        ++ map ntpHost s.ntp.servers
        ++ map ntpHost (config.networking.timeServers or [ ])
        ++ lib.optional (s.reseller.webhook_url != null) (urlHost s.reseller.webhook_url)
        ++ lib.optional (s.healing.l2_enabled && s.healing.l2_base_url != null)
             (urlHost s.healing.l2_base_url));
  isIPv4 = h: builtins.match "[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+(/[0-9]+)?" h != null;
  isIPv6 = h: builtins.match "[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(/[0-9]+)?" h != null;
  allHosts = lib.unique (settingHosts ++ cfg.egress.allowedHosts);
  hostNames = builtins.filter (h: !(isIPv4 h || isIPv6 h)) allHosts;
  v4 = builtins.filter isIPv4 (allHosts ++ cfg.egress.lanPrefixes);
  v6 = builtins.filter isIPv6 (allHosts ++ cfg.egress.lanPrefixes);
  lanV4 = builtins.filter isIPv4 cfg.egress.lanPrefixes;
  lanV6 = builtins.filter isIPv6 cfg.egress.lanPrefixes;
  # DNS goes only to the configured resolvers (settings.egress.resolvers): "port 53 to anyone"
  # would be a DNS exfiltration path out of the clinic.
  dnsV4 = builtins.filter isIPv4 s.egress.resolvers;
  dnsV6 = builtins.filter isIPv6 s.egress.resolvers;
  hostV4 = builtins.filter isIPv4 allHosts;
  hostV6 = builtins.filter isIPv6 allHosts;
  nftElems = xs: if xs == [ ] then "" else "elements = { ${lib.concatStringsSep ", " xs} }";
  nftPorts = ps: "{ ${lib.concatMapStringsSep ", " toString ps} }";

  unitName = u: if lib.hasInfix "." u then u else "${u}.service";
  units = map unitName cfg.privileges.units
    ++ lib.optional cfg.privileges.systemSwitch "osiris-switch-system.service";

  polkitRule = ''
    // services.osiris-agent: the only privileged things the agent user may ask systemd for.
    polkit.addRule(function (action, subject) {
      if (subject.user !== ${builtins.toJSON cfg.user}) { return polkit.Result.NOT_HANDLED; }
      if (action.id === "org.freedesktop.systemd1.manage-units") {
        var units = ${builtins.toJSON units};
        var verbs = ["start", "restart", "try-restart", "reload"];
        if (units.indexOf(action.lookup("unit")) >= 0 &&
            verbs.indexOf(action.lookup("verb")) >= 0) { return polkit.Result.YES; }
      }
      ${lib.optionalString cfg.privileges.setNtp ''
      if (action.id === "org.freedesktop.timedate1.set-ntp") { return polkit.Result.YES; }''}
      return polkit.Result.NOT_HANDLED;
    });
  '';

  stateDir = s.agent.state_dir;
  # status.json for the technician's console (osiris_agent/status_snapshot.py): 2750 osiris:
  # osiris-tech, so `osiris tui --local` as tech reads the status and never the state dir
  statusDir = if s.agent.status_dir != null then s.agent.status_dir else "/var/lib/osiris-status";

  # Root oneshot for RB-NIX-GEN-001: the agent writes a switch request carrying the SIGNED
  # release document (from its signed policy) to <state_dir>/switch/request.json and starts
  # this unit. The unit re-verifies the release signature with the real verifier
  # (python -m osiris_core.release, from the osiris package) against keys the agent cannot
  # write, then switches; a rollback goes only to the system this unit recorded itself.
  switchScript = pkgs.writeShellScript "osiris-switch-system" (builtins.readFile ./osiris-switch-system.sh);
  switchState = "/var/lib/osiris-switch";
  releaseKeysFile =
    if cfg.privileges.releaseKeys != [ ]
    then pkgs.writeText "osiris-release-keys" (lib.concatStringsSep "\n" cfg.privileges.releaseKeys + "\n")
    else "${switchState}/trusted-keys";
  releasePython = pkgs.python3.withPackages (ps: [ ps.pynacl ]);

  egressTable = ''
    # Egress allowlist for the appliance (services.osiris-agent.egress). Output policy drop.
    set hosts_v4 { type ipv4_addr; flags interval, timeout; ${nftElems hostV4} }
    set hosts_v6 { type ipv6_addr; flags interval, timeout; ${nftElems hostV6} }
    set dns_v4 { type ipv4_addr; ${nftElems dnsV4} }
    set dns_v6 { type ipv6_addr; ${nftElems dnsV6} }
    set lan_v4 { type ipv4_addr; flags interval; ${nftElems lanV4} }
    set lan_v6 { type ipv6_addr; flags interval; ${nftElems lanV6} }
    chain output {
      type filter hook output priority filter; policy drop;
      oifname "lo" accept
      ct state established,related accept
      ct state invalid drop
      ip daddr @dns_v4 meta l4proto { udp, tcp } th dport 53 accept
      ip6 daddr @dns_v6 meta l4proto { udp, tcp } th dport 53 accept
      ip6 nexthdr icmpv6 accept
      udp dport 67 accept
      ip daddr @hosts_v4 accept
      ip6 daddr @hosts_v6 accept
      ip daddr @lan_v4 tcp dport ${nftPorts cfg.egress.lanPorts} accept
      ip6 daddr @lan_v6 tcp dport ${nftPorts cfg.egress.lanPorts} accept
      ${cfg.egress.extraRules}
      limit rate 10/minute log prefix "osiris-egress-drop: " level warn
    }
  '';
in
{
  options.services.osiris-agent = {
    enable = mkEnableOption "the Osiris compliance agent (outbound only; it never listens)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../package.nix { };
      description = "The osiris package providing bin/osiris-agent.";
    };

    user = mkOption {
      type = types.str;
      default = "osiris";
      description = "Unprivileged system user the agent runs as (created by the module).";
    };

    group = mkOption {
      type = types.str;
      default = "osiris";
      description = "Group of the agent user; members may read the state directory if stateDirMode allows.";
    };

    stateDirMode = mkOption {
      type = types.strMatching "0[0-7]{3}";
      default = "0700";
      description = "Mode of the state directory (keys, token, outbox); 0750 lets group members run `osiris tui --local`.";
    };

    settings = import ./agent-options.nix { inherit lib; };

    configFile = mkOption {
      type = types.str;
      default = configPath;
      readOnly = true;
      description = "Where the module writes agent.toml (read-only; for other modules to refer to).";
    };

    privileges = {
      units = mkOption {
        type = types.listOf types.str;
        default = [
          "nftables.service"
          "systemd-journald.service"
          "systemd-timesyncd.service"
          "clamav-daemon.service"
          "osiris-backup.service"
          "osiris-restore-test.service"
        ];
        description = ''
          systemd units the agent may start, restart, try-restart or reload (via polkit,
          nothing else: no stop, no enable, no mask). The defaults are the units named by the
          RB-NIX-* runbooks' default parameters; a name without a suffix means `.service`.
        '';
      };
      setNtp = mkOption {
        type = types.bool;
        default = true;
        description = "Allow `timedatectl set-ntp` (RB-NIX-TIME-001) through polkit.";
      };
      netAdmin = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Give the agent the ambient capability CAP_NET_ADMIN so RB-NIX-FW-001 can read
          (`nft -s list ruleset`) and restore (`nft -f baseline`) the firewall. Without it the
          firewall check cannot even detect drift. It also lets a compromised agent change the
          ruleset; the unit-level `network.ipAddressAllow` (cgroup BPF, not nftables) still
          holds then, and the bpf() syscall is filtered out.
        '';
      };
      systemSwitch = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Provide osiris-switch-system.service (root, oneshot) that switches to the NixOS system
          closure named by a signed release document (osiris.release/1) in
          <state_dir>/switch/request.json, and let the agent start it. The unit verifies the
          signature itself. This is the only path by which the agent causes a root action with
          an argument.
        '';
      };
      releaseKeys = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "osiris/release+1a2b3c4d+AQ..." ];
        description = ''
          Signed-note vkeys a release document must be signed by for osiris-switch-system to
          switch to it. Empty (the default): the release key the agent pinned at enrolment
          (release_vkey; the order key only for an appliance enrolled before release keys),
          copied once (on the first switch) into /var/lib/osiris-switch/trusted-keys, which
          only root can write — trust on first use; set this in the image to avoid it.
        '';
      };
    };

    network.ipAddressAllow = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "203.0.113.10/32" "192.168.10.0/24" ];
      description = ''
        If non-empty, the agent's unit gets IPAddressDeny=any and IPAddressAllow=localhost plus
        these prefixes (enforced by systemd with cgroup BPF, independent of nftables). List the
        server's address, the NTP servers, DNS resolvers and the clinic LAN(s) with the hosts
        the agent manages over WinRM/SSH. Empty = no unit-level address restriction (host
        names cannot be expressed here; use `egress` for those).
      '';
    };

    egress = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Install an nftables output allowlist for the whole appliance (table inet
          osiris_egress, policy drop): loopback, replies, DNS to `settings.egress.resolvers`
          only, DHCP, the hosts named by the
          settings (server, NTP, webhook, L2 API) plus `allowedHosts`, and WinRM/SSH ports to
          `lanPrefixes`. Host names are resolved by the agent itself, through
          `settings.egress.resolvers` only, every `settings.egress.refresh_interval_s` (written
          to `settings.egress.hosts`); a failed refresh keeps the old addresses until they
          expire and records a signed `alert` bundle and an incident. Needs
          `privileges.netAdmin`.
        '';
      };
      allowedHosts = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "cache.nixos.org" ];
        description = "Extra host names or addresses the appliance may reach on any port.";
      };
      lanPrefixes = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "192.168.10.0/24" ];
        description = "Clinic networks holding the Windows/Linux hosts the agent manages.";
      };
      lanPorts = mkOption {
        type = types.listOf types.port;
        default = [ 22 5985 5986 ];
        description = "TCP ports allowed towards `lanPrefixes` (SSH, WinRM HTTP, WinRM HTTPS).";
      };
      extraRules = mkOption {
        type = types.lines;
        default = "";
        description = "Extra nft rules inserted before the final drop of the output chain.";
      };
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = s.deployment.mode != "reseller" || s.deployment.reseller_id != null;
        message = "services.osiris-agent.settings.deployment.reseller_id is required when deployment.mode = \"reseller\".";
      }
      {
        assertion = builtins.length s.ntp.servers >= s.ntp.min_good;
        message = "services.osiris-agent.settings.ntp.min_good exceeds the number of ntp.servers.";
      }
      {
        assertion = !s.healing.l2_enabled || (s.healing.l2_base_url != null && s.healing.l2_model != null);
        message = "services.osiris-agent.settings.healing: l2_enabled needs l2_base_url and l2_model.";
      }
      {
        assertion = !cfg.egress.enable || hostNames == [ ] || s.egress.resolvers != [ ];
        message = "services.osiris-agent.egress: host names are allowed but settings.egress.resolvers is empty, so DNS is closed and no name can be resolved; list the clinic's resolvers (IP addresses).";
      }
      {
        assertion = !cfg.egress.enable || hostNames == [ ] || cfg.privileges.netAdmin;
        message = "services.osiris-agent.egress: the agent refreshes the allowlist's host names itself (nft), which needs privileges.netAdmin = true; or allow only IP addresses.";
      }
      {
        assertion = urlHost s.server.url != null;
        message = "services.osiris-agent.settings.server.url is not a URL.";
      }
    ];

    users.users.${cfg.user} = {
      isSystemUser = true;
      group = cfg.group;
      home = stateDir;
      description = "Osiris compliance agent";
    };
    users.groups.${cfg.group} = { };
    # who may read the agent's status snapshot (the technician's console), and nothing else
    users.groups.osiris-tech = { };
    systemd.tmpfiles.rules = [ "d ${statusDir} 2750 ${cfg.user} osiris-tech -" ];

    environment.etc."osiris/agent.toml" = {
      text = tomlText;
      mode = "0640";
      user = "root";
      group = cfg.group;
    };
    environment.systemPackages = [ cfg.package ];

    security.polkit.enable = true;
    security.polkit.extraConfig = polkitRule;

    systemd.services.osiris-agent = {
      description = "Osiris compliance agent (outbound only)";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" "time-sync.target" "nftables.service" ];
      restartTriggers = [ tomlText ];
      # Runbook scripts run as `bash FILE` and call these tools by name.
      path = [
        pkgs.bash pkgs.coreutils pkgs.gawk pkgs.gnused pkgs.gnugrep pkgs.findutils
        pkgs.systemd pkgs.util-linux pkgs.cryptsetup
      ] ++ lib.optional cfg.privileges.netAdmin pkgs.nftables;
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/osiris-agent run --config ${configPath}";
        User = cfg.user;
        Group = cfg.group;
        DynamicUser = false;
        StateDirectory = "osiris";
        StateDirectoryMode = cfg.stateDirMode;
        # "-": a provisioning mount point (a USB stick, first boot) may be absent; the agent
        # wipes the file it reads there, so it needs write access.
        ReadWritePaths = lib.optional (stateDir != "/var/lib/osiris") stateDir ++ [ statusDir ]
          ++ map (d: "-${d}") (s.enrolment.provision_dirs or [ ]);
        UMask = "0077";
        Restart = "on-failure";
        RestartSec = "10s";
        # Exit 2 = config/usage error: restarting cannot fix it; say so once in the journal.
        RestartPreventExitStatus = "2";

        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" "~bpf" ];
        # MemoryDenyWriteExecute is left off: cffi callbacks (PyNaCl, cryptography) need W+X.
        CapabilityBoundingSet = if cfg.privileges.netAdmin then [ "CAP_NET_ADMIN" ] else [ "" ];
        AmbientCapabilities = lib.optional cfg.privileges.netAdmin "CAP_NET_ADMIN";
        # AF_UNIX: journald, D-Bus (systemctl/polkit); AF_INET*: server, NTP, WinRM, SSH;
        # AF_NETLINK: nft (only with netAdmin).
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ]
          ++ lib.optional cfg.privileges.netAdmin "AF_NETLINK";
      } // lib.optionalAttrs (cfg.network.ipAddressAllow != [ ]) {
        IPAddressDeny = "any";
        # the agent resolves the allowlist's names itself: its unit must reach the resolvers
        IPAddressAllow = [ "localhost" ] ++ cfg.network.ipAddressAllow
          ++ lib.optionals cfg.egress.enable s.egress.resolvers;
      };
    };

    # First boot: the technician's console on tty1 (`osiris-agent setup`, as the agent user, no
    # login shell) until the state dir is enrolled; `run` itself waits in first-boot mode.
    systemd.services.osiris-setup-console = {
      description = "Osiris first-boot setup console on tty1";
      wantedBy = [ "multi-user.target" ];
      after = [ "systemd-user-sessions.service" ];
      conflicts = [ "getty@tty1.service" ];
      unitConfig.ConditionPathExists = "!${stateDir}/pins.json";
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/osiris-agent setup --config ${configPath}";
        User = cfg.user;
        Group = cfg.group;
        StandardInput = "tty";
        StandardOutput = "tty";
        TTYPath = "/dev/tty1";
        TTYReset = true;
        TTYVHangup = true;
        UMask = "0077";
        Restart = "on-failure";
        StateDirectory = "osiris";
        StateDirectoryMode = cfg.stateDirMode;
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
      };
    };

    systemd.services.osiris-switch-system = mkIf cfg.privileges.systemSwitch {
      description = "Osiris: switch to the NixOS system a signed release names";
      # Never restarted by a switch: it may be the very unit running the switch.
      restartIfChanged = false;
      stopIfChanged = false;
      unitConfig.ConditionPathExists = "${stateDir}/switch/request.json";
      environment = {
        OSIRIS_RELEASE_VERIFY = "${releasePython}/bin/python -s -m osiris_core.release";
        OSIRIS_NIX_ENV = "${config.nix.package or pkgs.nix}/bin/nix-env";
        PYTHONPATH = "${cfg.package}/${pkgs.python3.sitePackages}";
      };
      path = [ pkgs.bash pkgs.coreutils ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = lib.escapeShellArgs [
          "${switchScript}" "${stateDir}/switch/request.json" switchState releaseKeysFile
          "${stateDir}/pins.json"
        ];
        # Root, on purpose: the system profile and activation need it. Nothing else is passed.
        User = "root";
        StateDirectory = "osiris-switch";
        # 0755: the agent reads the guard's record (guard.json); nothing here is secret (public
        # vkeys, store paths) and only root writes it.
        StateDirectoryMode = "0755";
        PrivateTmp = true;
      };
    };

    # The root update guard (issue 16): osiris-switch-system records when and to what it
    # switched (/var/lib/osiris-switch/pending.json); the new agent confirms a healthy cycle
    # in <state_dir>/switch/healthy. Unconfirmed after agent.update_guard_deadline_s, the guard
    # switches back to the recorded previous system — and nowhere else (osiris_core.release_guard).
    # It catches a build whose agent cannot even start. Runs only while a switch is pending.
    systemd.services.osiris-update-guard = mkIf cfg.privileges.systemSwitch {
      description = "Osiris: roll back an agent update whose new agent never confirmed health";
      restartIfChanged = false;
      stopIfChanged = false;
      unitConfig.ConditionPathExists = "${switchState}/pending.json";
      environment.PYTHONPATH = "${cfg.package}/${pkgs.python3.sitePackages}";
      path = [ pkgs.coreutils ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = lib.escapeShellArgs [
          "${releasePython}/bin/python" "-s" "-m" "osiris_core.release" "guard"
          "--state" switchState "--agent-state" stateDir
          "--deadline-s" (toString s.agent.update_guard_deadline_s)
          "--nix-env" "${config.nix.package or pkgs.nix}/bin/nix-env"
        ];
        User = "root";
        StateDirectory = "osiris-switch";
        StateDirectoryMode = "0755";
        PrivateTmp = true;
      };
    };
    systemd.timers.osiris-update-guard = mkIf cfg.privileges.systemSwitch {
      wantedBy = [ "timers.target" ];
      # OnCalendar, not OnUnitActiveSec: the unit is skipped (its condition) while nothing is
      # pending, and a never-active unit would never re-arm a relative timer.
      timerConfig = {
        OnCalendar = "minutely";
        AccuracySec = "10s";
      };
    };

    # With services.osiris-appliance the egress table is part of its firewall baseline
    # (nix/modules/osiris-appliance.nix) and NixOS's nftables loader stays off.
    networking.nftables.enable =
      mkIf (cfg.egress.enable && !(config.services.osiris-appliance.enable or false)) (lib.mkDefault true);
    networking.nftables.tables.osiris_egress = mkIf cfg.egress.enable {
      family = "inet";
      content = egressTable;
    };
    # the system resolver asks the same resolvers the allowlist lets DNS reach
    networking.nameservers = mkIf (cfg.egress.enable && s.egress.resolvers != [ ]) s.egress.resolvers;

    # The appliance never listens: nothing here opens an inbound port (DESIGN.md §6).
  };
}
