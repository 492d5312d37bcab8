#!/usr/bin/env bash
# LIN-PATCH-001 verify: count pending security updates.
count=""
pm=none
if command -v apt-get >/dev/null 2>&1; then
  pm=apt
  count=$(apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c '^Inst .*[Ss]ecurity' || true)
elif command -v dnf >/dev/null 2>&1; then
  pm=dnf
  count=$(dnf -q updateinfo list --security 2>/dev/null | grep -c . || true)
elif command -v yum >/dev/null 2>&1; then
  pm=yum
  count=$(yum -q updateinfo list security 2>/dev/null | grep -c . || true)
fi
if [ -e "$(osiris_path /var/run/reboot-required)" ]; then rr=true; else rr=false; fi
if [ "$pm" = none ]; then
  status=error
elif [ "$count" -le "$OSIRIS_P_MAX_PENDING" ]; then
  status=compliant
else
  status=drift
fi
osiris_emit "$status" \
  "$(osiris_obj security_updates "$(osiris_n "$count")" reboot_required "$rr" package_manager "$(osiris_s "$pm")")" \
  "$(osiris_obj security_updates "$(osiris_n "$OSIRIS_P_MAX_PENDING")")"
