#!/usr/bin/env bash
# LIN-MAC-001 remediate: turn mandatory access control on.
selinux_cfg=$(osiris_path /etc/selinux/config)
if [ -f "$selinux_cfg" ]; then
  sed -i -E 's/^SELINUX=.*/SELINUX=enforcing/' "$selinux_cfg"
  if [ -z "$osiris_root" ] && command -v setenforce >/dev/null 2>&1; then setenforce 1 >&2 || true; fi
  osiris_done true "SELINUX=enforcing"
else
  systemctl enable --now apparmor >&2
  osiris_done true "apparmor enabled"
fi
