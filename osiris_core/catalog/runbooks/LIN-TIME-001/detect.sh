#!/usr/bin/env bash
# LIN-TIME-001 detect: the time daemon is active, synchronised to a real source, and the clock's
# offset from it is within the bound.
# chrony: `chronyc -c tracking` (CSV: 1 ref id, 3 stratum, 5 system time offset s, 6 last
# offset s, 14 leap status); the offset is the larger of |system time| and |last offset|. A
# reference of 7F7F0101 (chrony's own "local" clock) is not a time source: not synchronised.
# systemd-timesyncd: `timedatectl show -p NTPSynchronized` and `timedatectl timesync-status`'s
# "Offset:" line (+1.234ms, -512us, +2.1s).
if osiris_active "$OSIRIS_P_SERVICE"; then a=true; else a=false; fi
sync=false off="" src=""
if [ "$a" = true ] && [ "$OSIRIS_P_SERVICE" = chrony ]; then
  line=$(chronyc -n -c tracking 2>/dev/null | head -n 1 || true)
  if [ -n "$line" ]; then
    IFS=, read -r ref name stratum _ systime lastoff _ <<<"$line"
    leap=${line##*,}
    src=$name
    if [ "$ref" != 00000000 ] && [ "$ref" != 7F7F0101 ] && [ "${stratum:-0}" -gt 0 ] 2>/dev/null \
      && [ "$leap" != "Not synchronised" ]; then sync=true; fi
    off=$(awk -v a="$systime" -v b="$lastoff" 'BEGIN {
      if (a !~ /^[-+]?[0-9.]+(e[-+]?[0-9]+)?$/ || b !~ /^[-+]?[0-9.]+(e[-+]?[0-9]+)?$/) exit
      a += 0; b += 0; a = a < 0 ? -a : a; b = b < 0 ? -b : b; printf "%d", (a > b ? a : b) * 1000 + 0.5 }')
  fi
elif [ "$a" = true ]; then
  [ "$(timedatectl show -p NTPSynchronized --value 2>/dev/null || true)" = yes ] && sync=true
  ts=$(timedatectl timesync-status 2>/dev/null || true)
  src=$(printf '%s\n' "$ts" | awk '$1 == "Server:" { print $2; exit }')
  off=$(printf '%s\n' "$ts" | awk '$1 == "Offset:" { v = $2; u = v; sub(/^[-+]?[0-9.]+/, "", u)
      sub(/[a-z]+$/, "", v); if (v !~ /^[-+]?[0-9.]+$/) exit; v += 0; v = v < 0 ? -v : v
      m = (u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : -1); if (m < 0) exit
      printf "%d", v * m + 0.5; exit }')
fi
if [ "$a" = true ] && [ "$sync" = true ] && [ -n "$off" ] && [ "$off" -le "$OSIRIS_P_MAX_OFFSET_MS" ]; then
  status=compliant
else
  status=drift
fi
osiris_emit "$status" \
  "$(osiris_obj service "$(osiris_s "$OSIRIS_P_SERVICE")" service_active "$a" synchronised "$sync" offset_ms "$(osiris_n "$off")" source "$(osiris_s "$src")")" \
  "$(osiris_obj service "$(osiris_s "$OSIRIS_P_SERVICE")" service_active true synchronised true offset_ms "$(osiris_n "$OSIRIS_P_MAX_OFFSET_MS")")"
