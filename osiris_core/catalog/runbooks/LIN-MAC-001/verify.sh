#!/usr/bin/env bash
# LIN-MAC-001 verify: is SELinux enforcing or AppArmor enabled?
selinux_cfg=$(osiris_path /etc/selinux/config)
if [ -f "$selinux_cfg" ]; then
  mech=selinux
  mode=$(sed -n 's/^SELINUX=//p' "$selinux_cfg" | tail -n 1)
  if [ -z "$osiris_root" ] && command -v getenforce >/dev/null 2>&1; then
    rt=$(getenforce | tr '[:upper:]' '[:lower:]')
    [ "$rt" = enforcing ] || mode=$rt
  fi
  if [ "$mode" = enforcing ]; then status=compliant; else status=drift; fi
else
  mech=apparmor
  en=$(cat "$(osiris_path /sys/module/apparmor/parameters/enabled)" 2>/dev/null || echo N)
  if [ "$en" = Y ] && osiris_active apparmor; then mode=enabled; status=compliant; else mode=disabled; status=drift; fi
fi
osiris_emit "$status" \
  "$(osiris_obj mechanism "$(osiris_s "$mech")" mode "$(osiris_s "$mode")")" \
  "$(osiris_obj mode "$(osiris_arr enforcing enabled)")"
