#!/usr/bin/env bash
# LIN-EDR-001 detect (only): which EDR agents are installed, and is each one's service running?
# Presence is the vendor's own control binary at its documented path; "running" is its systemd
# unit active. ClamAV is antivirus, not EDR: it is reported (clamav_present) and never counts.
agents_found=() running=()
check_agent() { # NAME BINARY UNIT...
  local name=$1 bin=$2 unit
  shift 2
  [ -x "$(osiris_path "$bin")" ] || return 0
  agents_found+=("$name")
  for unit in "$@"; do
    if osiris_active "$unit"; then running+=("$name"); return 0; fi
  done
}
check_agent falcon /opt/CrowdStrike/falconctl falcon-sensor
check_agent sentinelone /opt/sentinelone/bin/sentinelctl sentinelone
check_agent mdatp /usr/bin/mdatp mdatp
clam=false
if [ -x "$(osiris_path /usr/sbin/clamd)" ] || [ -x "$(osiris_path /usr/bin/clamscan)" ]; then clam=true; fi
ok=false
for r in "${running[@]}"; do
  if [ "$OSIRIS_P_EXPECTED" = any ] || [ "$OSIRIS_P_EXPECTED" = "$r" ]; then ok=true; fi
done
if [ "$ok" = true ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj agents_found "$(osiris_arr "${agents_found[@]}")" running "$(osiris_arr "${running[@]}")" expected "$(osiris_s "$OSIRIS_P_EXPECTED")" clamav_present "$clam")" \
  "$(osiris_obj running "$(osiris_arr "$OSIRIS_P_EXPECTED")")"
