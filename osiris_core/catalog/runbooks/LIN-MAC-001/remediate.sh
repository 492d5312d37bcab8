#!/usr/bin/env bash
# LIN-MAC-001 remediate: turn mandatory access control on — only what a running system can do.
# AppArmor: enable and start apparmor.service where the package is installed and the kernel has
# AppArmor on; a kernel with it off needs a boot parameter and a reboot, and a missing package
# an install, which this runbook never does — it fails saying which (a person decides).
selinux_cfg=$(osiris_path /etc/selinux/config)
if [ -f "$selinux_cfg" ]; then
  sed -i -E 's/^SELINUX=.*/SELINUX=enforcing/' "$selinux_cfg"
  if [ -z "$osiris_root" ] && command -v setenforce >/dev/null 2>&1; then setenforce 1 >&2 || true; fi
  osiris_done true "SELINUX=enforcing"
else
  en=$(cat "$(osiris_path /sys/module/apparmor/parameters/enabled)" 2>/dev/null || echo N)
  if ! osiris_installed apparmor; then
    osiris_fail "AppArmor is not installed (no apparmor.service): installing packages is a person's decision"
  fi
  if [ "$en" != Y ]; then
    osiris_fail "the kernel has AppArmor off (/sys/module/apparmor/parameters/enabled is not Y): starting apparmor.service cannot turn it on; it needs apparmor=1 security=apparmor on the kernel command line and a reboot"
  fi
  systemctl enable --now apparmor >&2 || osiris_fail "systemctl enable --now apparmor failed"
  osiris_done true "apparmor enabled"
fi
