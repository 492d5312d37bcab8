# services.osiris-appliance — what the appliance's own checks (RB-NIX-*) expect to find.
#
# Each RB-NIX runbook reads a unit, a file or a kernel view at a fixed default path; this module
# ships every one of them, so that with default parameters each detect either reports compliant
# on a correctly built appliance or a real drift — never an error (issue 15 item 6;
# tests/test_nix.py reads the paths from the runbooks themselves and runs each detect against a
# root laid out the way this module lays it out):
#
#   RB-NIX-FW-001      /etc/osiris/nftables-baseline.nft (begins with `flush ruleset`) and its
#                      sha256 in /etc/osiris/nftables-baseline.nft.sha256 (the pin when the policy
#                      sets none); nftables.service loads exactly that file and records the hash
#                      of the live ruleset in the agent's runbook state, as remediate does.
#   RB-NIX-AV-001      clamav-daemon.service + clamav-freshclam (signatures), clamscan on the
#                      system path and its build-time sha256 in /etc/osiris/clamscan.sha256.
#   RB-NIX-BACKUP-001  osiris-backup.service/.timer, osiris-restore-test.service/.timer and the
#                      status file /var/lib/osiris-backup/status (./osiris-backup.sh).
#   RB-NIX-LOG-001     osiris-log-canary.service/.timer: an OSIRIS-CANARY line in the journal every
#                      30 min; the agent user reads the system journal (group systemd-journal).
#   RB-NIX-TIME-001    systemd-timesyncd.
#   RB-NIX-LUKS-001    the root volume opened as /dev/mapper/root by the initrd (diskEncryption).
#
# It owns the appliance's firewall: networking.firewall and networking.nftables (NixOS's own
# loaders) are off, and the tables other modules declare in networking.nftables.tables (the
# agent's egress allowlist) are written into the baseline, so the file RB-NIX-FW-001 pins is the
# whole ruleset the host runs.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkIf types;
  cfg = config.services.osiris-appliance;
  agent = config.services.osiris-agent or { };
  agentUser = agent.user or "osiris";
  agentGroup = agent.group or "osiris";
  agentState = agent.settings.agent.state_dir or "/var/lib/osiris";

  # --- RB-NIX-FW-001: the baseline ruleset ------------------------------------------------
  baselinePath = "osiris/nftables-baseline.nft";
  rulesetState = "${agentState}/runbook-state/nft-ruleset.sha256";
  sshRule = net:
    "${if lib.hasInfix ":" net then "ip6" else "ip"} saddr ${net} tcp dport 22 accept";
  otherTables = lib.filterAttrs (_: t: t.enable or true) (config.networking.nftables.tables or { });
  tableText = name: t: ''

    table ${t.family} ${t.name or name} {
    ${t.content}
    }
  '';
  baseline = ''
    # The Osiris appliance's whole firewall (services.osiris-appliance.firewall). Loaded by
    # nftables.service and by RB-NIX-FW-001; its sha256 is in /etc/${baselinePath}.sha256.
    flush ruleset

    table inet osiris_filter {
      chain input {
        type filter hook input priority filter; policy drop;
        iifname "lo" accept
        ct state established,related accept
        ct state invalid drop
        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, packet-too-big } accept
        ip6 saddr fe80::/10 udp dport 546 accept
    ${lib.concatMapStrings (n: "    ${sshRule n}\n") cfg.firewall.sshAllowFrom}${cfg.firewall.extraInputRules}
        limit rate 10/minute log prefix "osiris-input-drop: " level info
      }
      chain forward {
        type filter hook forward priority filter; policy drop;
      }
    }
  '' + lib.concatStrings (lib.mapAttrsToList tableText otherTables);
  baselineSha256 = builtins.hashString "sha256" baseline;

  # Record what was loaded, where RB-NIX-FW-001 keeps it (owned by the agent, who rewrites it
  # after its own reload): a host that booted its baseline is compliant from the first check.
  recordRuleset = pkgs.writeShellScript "osiris-nft-record" ''
    set -euo pipefail
    d=$(${pkgs.coreutils}/bin/dirname "$OSIRIS_NFT_STATE")
    # Before the agent's first start its state dir does not exist; creating it here would make
    # it root's. RB-NIX-FW-001 then finds the hash unrecorded and records it on its first heal.
    if [ ! -d "$(${pkgs.coreutils}/bin/dirname "$d")" ]; then
      echo "osiris-nft-record: agent state dir not created yet; nothing recorded"
      exit 0
    fi
    ${pkgs.coreutils}/bin/install -d -o ${agentUser} -g ${agentGroup} -m 0700 "$d"
    t=$(${pkgs.coreutils}/bin/mktemp "$d/.nft.XXXXXX")
    ${pkgs.nftables}/bin/nft -s -t list ruleset | ${pkgs.coreutils}/bin/sha256sum | ${pkgs.gawk}/bin/awk '{ print $1 }' >"$t"
    ${pkgs.coreutils}/bin/chown ${agentUser}:${agentGroup} "$t"
    ${pkgs.coreutils}/bin/mv -f "$t" "$OSIRIS_NFT_STATE"
  '';

  # --- RB-NIX-BACKUP-001 --------------------------------------------------------------------
  backupScript = pkgs.writeShellScript "osiris-backup" (builtins.readFile ./osiris-backup.sh);
  backupDir = "/var/lib/osiris-backup";
  statusFile = "${backupDir}/status";
  backupUnit = {
    path = [ pkgs.bash pkgs.coreutils pkgs.gnutar pkgs.gzip pkgs.gnused pkgs.gawk pkgs.findutils pkgs.util-linux ];
    serviceConfig = {
      Type = "oneshot";
      # Root: it reads the agent's 0700 state. It writes only under its own state dir.
      User = "root";
      StateDirectory = "osiris-backup";
      StateDirectoryMode = "0750";
      PrivateTmp = true;
      ProtectSystem = "strict";
      ProtectHome = true;
      NoNewPrivileges = true;
    };
  };
in
{
  # The agent whose user, group and state dir the checks run as / write to.
  imports = [ ./osiris-agent.nix ];

  options.services.osiris-appliance = {
    enable = lib.mkEnableOption "what the appliance's own RB-NIX checks expect (firewall baseline, ClamAV, backup, log canary, time sync, LUKS root)";

    firewall = {
      sshAllowFrom = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "192.168.10.0/24" ];
        description = "Networks that may reach tcp/22. Empty: no inbound port at all.";
      };
      extraInputRules = mkOption {
        type = types.lines;
        default = "";
        description = "Extra nft rules in the input chain, before the final logged drop.";
      };
    };

    antivirus.mirrors = mkOption {
      type = types.listOf types.str;
      default = [ "database.clamav.net" ];
      description = "Hosts freshclam downloads signatures from (added to the agent's egress allowlist).";
    };

    backup = {
      paths = mkOption {
        type = types.listOf (types.strMatching "/[A-Za-z0-9._/-]+");
        default = [ agentState "/etc/osiris" ];
        description = "What osiris-backup.service archives (the agent's state: keys, outbox, state.db).";
      };
      archiveDir = mkOption {
        type = types.strMatching "/[A-Za-z0-9._/-]+";
        default = "${backupDir}/archives";
        description = ''
          Where archives go. The default is on the appliance's own (LUKS) disk, which proves the
          job runs and restores but is no disaster copy: point it at a mounted off-box volume.
        '';
      };
      keep = mkOption {
        type = types.ints.between 1 365;
        default = 14;
        description = "How many archives to keep.";
      };
      schedule = mkOption {
        type = types.str;
        default = "*-*-* 02,14:00:00";
        description = "OnCalendar of osiris-backup.timer (twice a day: inside RB-NIX-BACKUP-001's 24 h default).";
      };
      restoreTestSchedule = mkOption {
        type = types.str;
        default = "Sun *-*-* 03:30:00";
        description = "OnCalendar of osiris-restore-test.timer (weekly: inside the 30-day default).";
      };
    };

    logCanaryInterval = mkOption {
      type = types.strMatching "[0-9]+(s|min|h)";
      default = "30min";
      description = "How often osiris-log-canary.timer writes an OSIRIS-CANARY line (RB-NIX-LOG-001 wants one within 2 h).";
    };

    diskEncryption.rootDevice = mkOption {
      type = types.nullOr (types.strMatching "/dev/[A-Za-z0-9._/-]+");
      default = null;
      example = "/dev/disk/by-partlabel/osiris-root";
      description = ''
        The LUKS partition the initrd opens as /dev/mapper/root (what RB-NIX-LUKS-001 checks).
        null: not configured here (the installer's own boot.initrd.luks.devices.root may), and
        a warning says the check will report drift until the root volume is LUKS.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = !(config.networking.firewall.enable or false) && !(config.networking.nftables.enable or false);
        message = "services.osiris-appliance owns the firewall (the RB-NIX-FW-001 baseline): set networking.firewall.enable and networking.nftables.enable to false.";
      }
    ];
    warnings = lib.optional (cfg.diskEncryption.rootDevice == null && !((config.boot.initrd.luks.devices or { }) ? root))
      "services.osiris-appliance: no LUKS device named root; RB-NIX-LUKS-001 will report the root volume unencrypted.";

    # --- firewall ------------------------------------------------------------------------
    networking.firewall.enable = lib.mkDefault false;
    networking.nftables.enable = lib.mkDefault false;
    environment.etc.${baselinePath} = { text = baseline; mode = "0444"; };
    environment.etc."${baselinePath}.sha256" = { text = baselineSha256 + "\n"; mode = "0444"; };
    systemd.services.nftables = {
      description = "Osiris appliance firewall (the RB-NIX-FW-001 baseline)";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-pre.target" ];
      before = [ "network-pre.target" ];
      after = [ "local-fs.target" ];
      unitConfig.DefaultDependencies = false;
      restartTriggers = [ baseline ];
      # RB-NIX-FW-001's state_file: where recordRuleset puts the live ruleset's hash.
      environment.OSIRIS_NFT_STATE = rulesetState;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = [ "${pkgs.nftables}/bin/nft -f /etc/${baselinePath}" "${recordRuleset}" ];
        ExecReload = [ "${pkgs.nftables}/bin/nft -f /etc/${baselinePath}" "${recordRuleset}" ];
      };
    };

    # --- antivirus -------------------------------------------------------------------------
    services.clamav.daemon.enable = true;
    services.clamav.updater.enable = true;
    environment.systemPackages = [ pkgs.clamav ];
    # RB-NIX-AV-001's pin when the policy sets none: the scanner's sha256, computed when the
    # system is built (so it is part of the signed closure, like the binary itself).
    environment.etc."osiris/clamscan.sha256".source = pkgs.runCommand "osiris-clamscan-sha256" { } ''
      ${pkgs.coreutils}/bin/sha256sum ${pkgs.clamav}/bin/clamscan | ${pkgs.coreutils}/bin/cut -d' ' -f1 >$out
    '';
    services.osiris-agent.egress.allowedHosts = cfg.antivirus.mirrors;

    # --- backup ----------------------------------------------------------------------------
    systemd.services.osiris-backup = backupUnit // {
      description = "Osiris appliance backup (RB-NIX-BACKUP-001)";
      serviceConfig = backupUnit.serviceConfig // {
        ExecStart = lib.escapeShellArgs ([ "${backupScript}" "backup" statusFile cfg.backup.archiveDir (toString cfg.backup.keep) ] ++ cfg.backup.paths);
        ReadWritePaths = lib.optional (!(lib.hasPrefix "${backupDir}/" cfg.backup.archiveDir)) cfg.backup.archiveDir;
      };
    };
    systemd.services.osiris-restore-test = backupUnit // {
      description = "Osiris appliance restore test (RB-NIX-BACKUP-001)";
      after = [ "osiris-backup.service" ];
      serviceConfig = backupUnit.serviceConfig // {
        ExecStart = lib.escapeShellArgs [ "${backupScript}" "restore-test" statusFile ];
        ReadWritePaths = [ ];
      };
    };
    systemd.timers.osiris-backup = {
      wantedBy = [ "timers.target" ];
      timerConfig = { OnCalendar = cfg.backup.schedule; Persistent = true; RandomizedDelaySec = "10min"; };
    };
    systemd.timers.osiris-restore-test = {
      wantedBy = [ "timers.target" ];
      timerConfig = { OnCalendar = cfg.backup.restoreTestSchedule; Persistent = true; };
    };
    # The status file and archives are group-readable by the agent (it hashes the archive),
    # never writable by it.
    systemd.tmpfiles.rules = [ "d ${backupDir} 0750 root ${agentGroup} - -" ];

    # --- logging canary --------------------------------------------------------------------
    systemd.services.osiris-log-canary = {
      description = "Osiris: write the OSIRIS-CANARY line RB-NIX-LOG-001 looks for";
      serviceConfig = {
        Type = "oneshot";
        DynamicUser = true;
        ExecStart = "${pkgs.util-linux}/bin/logger -t osiris-canary OSIRIS-CANARY";
      };
    };
    systemd.timers.osiris-log-canary = {
      wantedBy = [ "timers.target" ];
      timerConfig = { OnBootSec = "1min"; OnUnitActiveSec = cfg.logCanaryInterval; };
    };
    # The agent reads the system journal for the canary (read-only).
    users.users.${agentUser}.extraGroups = [ "systemd-journal" ];

    # --- time ------------------------------------------------------------------------------
    services.timesyncd.enable = true;

    # --- disk encryption -------------------------------------------------------------------
    boot.initrd.luks.devices = mkIf (cfg.diskEncryption.rootDevice != null) {
      root.device = cfg.diskEncryption.rootDevice;
    };
  };
}
