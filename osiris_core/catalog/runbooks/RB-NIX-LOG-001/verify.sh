#!/usr/bin/env bash
# RB-NIX-LOG-001 verify: are the logging units active, and did a recent canary reach the journal?
inactive=()
for u in $OSIRIS_P_SERVICES; do
  osiris_active "$u" || inactive+=("$u")
done
seen=false
if command -v journalctl >/dev/null 2>&1; then
  n=$(journalctl -q --no-pager -o cat --since "$OSIRIS_P_CANARY_MAX_AGE_HOURS hours ago" 2>/dev/null | grep -c 'OSIRIS-CANARY' || true)
  [ "${n:-0}" -gt 0 ] && seen=true
fi
if [ "${#inactive[@]}" -eq 0 ] && [ "$seen" = true ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj inactive_services "$(osiris_arr "${inactive[@]}")" canary_seen "$seen")" \
  "$(osiris_obj inactive_services '[]' canary_seen true)"
