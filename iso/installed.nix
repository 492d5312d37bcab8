# The installed Osiris appliance: what osiris-install (iso/osiris-install) puts on the disk.
#
# Same site options and hardening as the live ISO (common.nix). The disk it expects is the one
# the installer makes: a GPT ESP labelled OSIRIS-ESP on the partition osiris-esp, and the LUKS2
# partition osiris-luks opened as /dev/mapper/root (the name RB-NIX-LUKS-001 checks) by the
# systemd initrd with the TPM2 — no passphrase at boot; the recovery key the installer printed
# is the only other way in. Everything persistent (/var/lib/osiris, the provisioning dir, the
# journal, backups) is on that encrypted root. The first-boot enrolment reads the provisioning
# file the installer copied into /var/lib/osiris-provision/inbox.
{ lib, ... }:

{
  imports = [ ./common.nix ];

  config = {
    # --- boot: ESP + LUKS2 root unlocked by the TPM2 in a systemd initrd --------------------
    boot.loader.systemd-boot.enable = true;
    boot.loader.systemd-boot.editor = false; # no kernel command line edits at the console
    boot.loader.efi.canTouchEfiVariables = true;
    boot.initrd.systemd.enable = true;
    boot.initrd.availableKernelModules = [ "tpm_crb" "tpm_tis" "nvme" "ahci" "sd_mod" "usb_storage" ];
    boot.initrd.luks.devices.root = {
      device = "/dev/disk/by-partlabel/osiris-luks";
      crypttabExtraOpts = [ "tpm2-device=auto" ];
      allowDiscards = true;
    };

    # --- file systems by label --------------------------------------------------------------
    fileSystems."/" = {
      device = "/dev/disk/by-label/osiris-root";
      fsType = "ext4";
    };
    fileSystems."/boot" = {
      device = "/dev/disk/by-label/OSIRIS-ESP";
      fsType = "vfat";
      options = [ "umask=0077" ];
    };

    # --- persistent state on the encrypted root ----------------------------------------------
    # The agent's state (keys, token, outbox, chain) 0700 osiris; the provisioning inbox is the
    # agent's (it deletes the file once enrolled), the SSH keys dir root's (common.nix).
    systemd.tmpfiles.rules = [
      "d /var/lib/osiris 0700 osiris osiris - -"
      "d /var/lib/osiris-provision 0755 root root - -"
      "d /var/lib/osiris-provision/inbox 0700 osiris osiris - -"
      "Z /var/lib/osiris-provision/inbox - osiris osiris - -"
    ];
    # the installer's copy first, then a stick plugged in at first boot (iso/common.nix)
    services.osiris-agent.settings.enrolment.provision_dirs =
      [ "/var/lib/osiris-provision/inbox" "/run/osiris-provision" ];
  };
}
