#!/usr/bin/env bash
# LIN-FW-001 verify: is the host firewall really filtering? Not just "is its unit active": ufw.service is a
# oneshot that stays active while ufw.conf says ENABLED=no, so ufw must say "Status: active" itself;
# firewalld must say running; nftables must have an input hook loaded. Not installed is drift, reported
# as such. In the OSIRIS_ROOT sandbox (lab) only the unit state exists.
svc=$OSIRIS_P_FIREWALL_SERVICE
installed=true
active=false
if [ -n "$osiris_root" ]; then
  if osiris_active "$svc"; then active=true; fi
else
  case "$svc" in
    ufw)
      if ! command -v ufw >/dev/null 2>&1; then
        installed=false
      elif ufw status | grep -q '^Status: active'; then
        active=true
      fi
      ;;
    firewalld)
      if ! command -v firewall-cmd >/dev/null 2>&1; then
        installed=false
      elif [ "$(firewall-cmd --state 2>/dev/null || true)" = running ]; then
        active=true
      fi
      ;;
    nftables)
      if ! command -v nft >/dev/null 2>&1; then
        installed=false
      elif osiris_active nftables && nft list ruleset | grep -q 'hook input'; then
        active=true
      fi
      ;;
  esac
fi
if [ "$active" = true ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj service "$(osiris_s "$svc")" active "$active" installed "$installed")" \
  "$(osiris_obj service "$(osiris_s "$svc")" active true installed true)"
