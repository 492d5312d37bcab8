# The Osiris installer ISO (NixOS live system). Build: see iso/README.md.
#
# The live system is the shared appliance configuration (common.nix: no autologin, no
# NOPASSWD sudo, no keys in the image, sshd closed unless sshAllowFrom) plus what installs the
# real appliance: the installed system's closure (osiris.installer.system) is on the ISO, and
# `osiris-install` (iso/osiris-install) puts it on the disk offline. The installer never starts
# by itself — it erases a disk: on tty8 (Ctrl+Alt+F8) a prompt runs it with --confirm, so the
# technician at the box must type the disk's name. Physical presence is the authorisation: the
# live system has no root password and tech no sudo.
{ config, lib, pkgs, modulesPath, ... }:

let
  system = config.osiris.installer.system;
  installer = pkgs.writeShellApplication {
    name = "osiris-install";
    runtimeInputs = with pkgs; [
      coreutils util-linux cryptsetup systemd dosfstools e2fsprogs nixos-install-tools
    ];
    # writeShellApplication writes its own shebang and shellchecks the text: the script's own
    # shebang line goes (shellcheck refuses a shebang below line 1).
    text = ''
      export OSIRIS_SYSTEM=${if system == null then "" else "${system}"}
    '' + lib.removePrefix "#!/usr/bin/env bash\n" (builtins.readFile ./osiris-install);
  };
  console = pkgs.writeShellApplication {
    name = "osiris-install-console";
    runtimeInputs = [ installer pkgs.coreutils ];
    text = ''
      while true; do
        echo
        echo "Osiris installer: erases the target disk and installs the appliance (iso/README.md)."
        read -r -p "osiris-install options (Enter: none; e.g. --disk /dev/sda --wipe): " line || exit 0
        read -ra opts <<<"$line"
        osiris-install --confirm "''${opts[@]}" || true
        read -r -p "Press Enter to start again. " _ || exit 0
      done
    '';
  };
in
{
  imports = [
    # Only the image builder — NOT installation-cd-*.nix, which enables autologin and
    # passwordless sudo for the `nixos` user.
    "${modulesPath}/installer/cd-dvd/iso-image.nix"
    ./common.nix
  ];

  options.osiris.installer.system = lib.mkOption {
    type = lib.types.nullOr lib.types.package;
    default = null;
    description = ''
      The installed appliance's system (config.system.build.toplevel of a configuration that
      imports iso/installed.nix). Its closure is put on the ISO and osiris-install installs it
      with nixos-install --system, offline. null: a live ISO without an installer payload
      (osiris-install then refuses).
    '';
  };

  config = {
    isoImage.isoName = lib.mkForce "osiris-appliance.iso";
    isoImage.makeEfiBootable = true;
    isoImage.makeUsbBootable = true;
    isoImage.storeContents = lib.optional (system != null) system;

    environment.systemPackages = [ installer ];
    systemd.services.osiris-install-console = {
      description = "Osiris installer prompt on tty8 (runs osiris-install --confirm)";
      wantedBy = [ "multi-user.target" ];
      after = [ "systemd-user-sessions.service" ];
      conflicts = [ "getty@tty8.service" ];
      serviceConfig = {
        ExecStart = "${console}/bin/osiris-install-console";
        StandardInput = "tty";
        StandardOutput = "tty";
        TTYPath = "/dev/tty8";
        TTYReset = true;
        TTYVHangup = true;
        Restart = "always";
      };
    };
  };
}
