# What the live ISO (appliance.nix) and the installed appliance (installed.nix) share: the
# site options (serverUrl, dnsResolvers, sshAllowFrom), the hardened agent, the logins and
# sshd, the firewall baseline, logs. One module, so the two cannot drift apart.
#
# Fixes what lessons.md B6/B8/A7 found in the old image: no console autologin, no NOPASSWD
# sudo, no SSH keys baked in, the agent is the hardened module (not a root unit of its own),
# nothing listens except sshd, and the firewall opens no port by default. Technicians' SSH keys
# and the networks they may connect from are supplied at provisioning (see README.md), never
# built into the image.
{ config, lib, pkgs, ... }:

let
  cfg = config.osiris.appliance;
in
{
  imports = [
    ../nix/modules/osiris-agent.nix
    ../nix/modules/osiris-appliance.nix
  ];

  options.osiris.appliance = {
    serverUrl = lib.mkOption {
      type = lib.types.str;
      example = "https://cc.example-msp.com";
      description = ''
        Central Command URL written into agent.toml. Required, no default: an image must not
        carry a hard-coded placeholder server (lessons.md C). Set it in a per-MSP wrapper
        configuration (see README.md).
      '';
    };
    dnsResolvers = lib.mkOption {
      type = lib.types.nonEmptyListOf lib.types.str;
      example = [ "192.168.10.1" ];
      description = ''
        The clinic's DNS resolvers (IP addresses). Required, no default: the egress allowlist
        lets DNS reach only these (port 53 to any host would be an exfiltration path), and the
        system resolver and the agent ask only them.
      '';
    };
    sshAllowFrom = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "192.168.10.0/24" ];
      description = ''
        Networks from which technicians may reach sshd (tcp/22). Empty (the default): the port
        is closed and sshd is reachable by nobody; the image opens no port.
      '';
    };
  };

  config = {
    system.stateVersion = "24.11";
    networking.hostName = lib.mkDefault "osiris-appliance";

    # --- the agent ---------------------------------------------------------------------------
    services.osiris-agent = {
      enable = true;
      settings.server.url = cfg.serverUrl;
      settings.egress.resolvers = cfg.dnsResolvers;
      # First boot: a USB stick labelled OSIRIS-PROV carrying osiris-provision.toml (the udev
      # rule below mounts it here, owned by the agent user, which wipes the file it reads).
      settings.enrolment.provision_dirs = lib.mkDefault [ "/run/osiris-provision" ];
      egress.enable = true;
      # Substitutes for the signed system closures RB-NIX-GEN-001 switches to.
      egress.allowedHosts = [ "cache.nixos.org" ];
    };

    # A vfat/exfat stick labelled OSIRIS-PROV is mounted at /run/osiris-provision for the agent
    # user only (uid/gid osiris, umask 0077, nosuid,nodev,noexec); nothing else is automounted.
    services.udev.extraRules = ''
      ACTION=="add", SUBSYSTEM=="block", ENV{ID_FS_LABEL}=="OSIRIS-PROV", RUN+="/run/current-system/sw/bin/systemd-mount --no-block --collect -o uid=osiris,gid=osiris,umask=0077,nosuid,nodev,noexec $devnode /run/osiris-provision"
    '';

    # --- logins ------------------------------------------------------------------------------
    services.getty.autologinUser = lib.mkForce null;
    users.mutableUsers = false;
    users.users.root.hashedPassword = "!"; # locked; no console root login
    users.users.tech = {
      isNormalUser = true;
      description = "Technician (SSH key supplied at provisioning)";
      hashedPassword = "!"; # no password: keys only, and no sudo without a password
      extraGroups = [ "osiris" "osiris-tech" "systemd-journal" ];
    };
    security.sudo.enable = true;
    security.sudo.wheelNeedsPassword = lib.mkForce true;
    security.sudo.execWheelOnly = true;

    # Only root and wheel may talk to the nix daemon: the agent cannot build or import store
    # paths, so osiris-switch-system can only ever switch to closures root put there.
    nix.settings.allowed-users = [ "root" "@wheel" ];
    nix.settings.trusted-users = [ "root" ];

    # --- sshd: the only listening service ------------------------------------------------------
    services.openssh = {
      enable = true;
      openFirewall = false; # opened only towards sshAllowFrom, below
      settings = {
        PasswordAuthentication = false;
        KbdInteractiveAuthentication = false;
        PermitRootLogin = "no";
        AllowUsers = [ "tech" ];
        X11Forwarding = false;
        AllowTcpForwarding = "no";
        AllowAgentForwarding = false;
      };
      # Keys come from the provisioning medium, copied to a root-owned path; nothing in the
      # image and nothing a user can add to ~/.ssh.
      authorizedKeysInHomedir = false;
      authorizedKeysFiles = lib.mkForce [ "/var/lib/osiris-provision/ssh/%u.keys" ];
    };
    systemd.tmpfiles.rules = [ "d /var/lib/osiris-provision/ssh 0755 root root - -" ];

    # --- firewall: the RB-NIX-FW-001 baseline, nothing open by default -------------------------
    # services.osiris-appliance writes the whole ruleset (input policy drop, the agent's egress
    # table) into /etc/osiris/nftables-baseline.nft and nftables.service loads exactly that, so
    # the appliance's firewall check pins what the host really runs. NixOS's own firewall
    # loaders are off (the module asserts it).
    networking.firewall.enable = false;
    networking.nftables.enable = false;
    # ClamAV, backup + restore test, the logging canary, timesyncd, the LUKS root check.
    services.osiris-appliance = {
      enable = true;
      firewall.sshAllowFrom = cfg.sshAllowFrom;
    };
    services.avahi.enable = lib.mkForce false;
    services.nginx.enable = lib.mkForce false;

    # --- logs and the rest ---------------------------------------------------------------------
    services.journald.extraConfig = ''
      Storage=persistent
      SystemMaxUse=500M
      MaxRetentionSec=1month
    '';
    security.auditd.enable = true;
    security.audit.enable = true;
    security.audit.rules = [
      "-a exit,always -F arch=b64 -S execve -F euid=0"
      "-w /etc/osiris -p wa -k osiris-config"
      "-w /var/lib/osiris-provision -p wa -k osiris-provision"
    ];
    systemd.watchdog.runtimeTime = "30s";
    zramSwap.enable = true;
    nix.gc = {
      automatic = true;
      dates = "weekly";
      options = "--delete-older-than 30d";
    };
    environment.systemPackages = [ pkgs.nftables ];
  };
}
