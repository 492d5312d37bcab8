# services.osiris-server — Central Command (osiris-server serve).
#
# Runs `osiris-server serve --data DIR --listen HOST:PORT [--tls-cert --tls-key --client-ca]` as
# a dedicated unprivileged user. On first start (data directory empty) ExecStartPre runs
# `osiris-server init --data DIR --json`, which creates the database and keys; the first admin
# token lands in DIR/initial-admin.json (mode 0600, never in the journal). Store it, then
# delete the file.
#
# TLS: set tls.certFile and tls.keyFile (and tls.clientCaFile for mTLS), or put a
# TLS-terminating proxy in front and listen on 127.0.0.1 only. Plain HTTP on a non-loopback
# address is refused by an assertion unless allowPlainHttp = true.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types;
  cfg = config.services.osiris-server;

  listenHost =
    let m = builtins.match "[[]([0-9A-Fa-f:.]+)[]]:[0-9]+|([^:]+):[0-9]+" cfg.listen;
    in if m == null then null
       else if builtins.elemAt m 0 != null then builtins.elemAt m 0 else builtins.elemAt m 1;
  listenPort =
    let m = builtins.match ".*:([0-9]+)" cfg.listen;
    in if m == null then null else lib.toInt (builtins.head m);
  loopback = builtins.elem listenHost [ "127.0.0.1" "::1" "localhost" ];
  tls = cfg.tls.certFile != null;

  # Credentials are handed over by systemd (LoadCredential), so the key may stay root-only.
  credDir = "/run/credentials/osiris-server.service";
  serveArgs = [ "serve" "--data" cfg.dataDir "--listen" cfg.listen ]
    ++ lib.optionals tls [ "--tls-cert" "${credDir}/tls.crt" "--tls-key" "${credDir}/tls.key" ]
    ++ lib.optionals (cfg.tls.clientCaFile != null) [ "--client-ca" "${credDir}/client-ca.pem" ]
    ++ cfg.extraArgs;

  # First start only. The admin token is a secret: it goes to a 0600 file in the data directory
  # (never to the journal — the old server printed its admin password to the log, lessons B8).
  initScript = pkgs.writeShellScript "osiris-server-init" ''
    set -eu
    umask 077
    data=${lib.escapeShellArg cfg.dataDir}
    if [ -z "$(ls -A "$data")" ]; then
      out=$(mktemp)
      ${cfg.package}/bin/osiris-server init --data "$data" --json > "$out"
      mv "$out" "$data/initial-admin.json"
      echo "osiris-server: initialised $data; first admin token is in $data/initial-admin.json (0600)"
    fi
  '';
in
{
  options.services.osiris-server = {
    enable = mkEnableOption "Osiris Central Command (osiris-server)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../package.nix { };
      description = "The osiris package providing bin/osiris-server.";
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/osiris-server";
      description = "Database, log keys and order key. Created mode 0700 for `user`.";
    };

    listen = mkOption {
      type = types.strMatching "([[][0-9A-Fa-f:.]+[]]|[A-Za-z0-9.-]+):[0-9]{1,5}";
      default = "127.0.0.1:8443";
      example = "0.0.0.0:443";
      description = "HOST:PORT passed to `--listen`.";
    };

    user = mkOption {
      type = types.str;
      default = "osiris-server";
      description = "Unprivileged system user the server runs as (created by the module).";
    };

    group = mkOption {
      type = types.str;
      default = "osiris-server";
      description = "Group of the server user.";
    };

    tls = {
      certFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "PEM certificate chain (`--tls-cert`). A path outside the Nix store.";
      };
      keyFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "PEM private key (`--tls-key`); may be root-only, systemd passes it in.";
      };
      clientCaFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "CA bundle for client certificates (`--client-ca`, mTLS). null = no mTLS.";
      };
    };

    allowPlainHttp = mkOption {
      type = types.bool;
      default = false;
      description = "Allow listening without TLS on a non-loopback address (lab only).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the listen port in the firewall.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Extra arguments appended to `osiris-server serve`.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = (cfg.tls.certFile == null) == (cfg.tls.keyFile == null);
        message = "services.osiris-server.tls: set both certFile and keyFile, or neither.";
      }
      {
        assertion = cfg.tls.clientCaFile == null || tls;
        message = "services.osiris-server.tls.clientCaFile (mTLS) needs certFile and keyFile.";
      }
      {
        assertion = tls || loopback || cfg.allowPlainHttp;
        message = "services.osiris-server: listening on ${cfg.listen} without TLS; set tls.* or allowPlainHttp.";
      }
      {
        assertion = listenPort != null && listenPort >= 1 && listenPort <= 65535;
        message = "services.osiris-server.listen: port must be 1..65535.";
      }
    ];

    users.users.${cfg.user} = {
      isSystemUser = true;
      group = cfg.group;
      home = cfg.dataDir;
      description = "Osiris Central Command";
    };
    users.groups.${cfg.group} = { };

    environment.systemPackages = [ cfg.package ];

    systemd.tmpfiles.rules = [ "d ${cfg.dataDir} 0700 ${cfg.user} ${cfg.group} - -" ];

    systemd.services.osiris-server = {
      description = "Osiris Central Command";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = {
        ExecStartPre = "${initScript}";
        ExecStart = lib.escapeShellArgs ([ "${cfg.package}/bin/osiris-server" ] ++ serveArgs);
        User = cfg.user;
        Group = cfg.group;
        DynamicUser = false;
        ReadWritePaths = [ cfg.dataDir ];
        LoadCredential =
          lib.optionals tls [ "tls.crt:${cfg.tls.certFile}" "tls.key:${cfg.tls.keyFile}" ]
          ++ lib.optional (cfg.tls.clientCaFile != null) "client-ca.pem:${cfg.tls.clientCaFile}";
        UMask = "0077";
        Restart = "on-failure";
        RestartSec = "5s";
        RestartPreventExitStatus = "2";
        LimitNOFILE = 65536;

        # Ports below 1024 need this one capability; nothing else.
        AmbientCapabilities = lib.optional (listenPort != null && listenPort < 1024) "CAP_NET_BIND_SERVICE";
        CapabilityBoundingSet =
          if listenPort != null && listenPort < 1024 then [ "CAP_NET_BIND_SERVICE" ] else [ "" ];
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
        ProtectProc = "invisible";
        ProcSubset = "pid";
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
      };
    };

    networking.firewall.allowedTCPPorts = lib.optional (cfg.openFirewall && listenPort != null) listenPort;
  };
}
