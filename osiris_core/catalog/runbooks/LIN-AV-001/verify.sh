#!/usr/bin/env bash
# LIN-AV-001 verify: clamd and freshclam active, and the daily signatures young enough.
# The age is the build time in the database's own header (the last field of "ClamAV-VDB:…",
# seconds since the epoch; freshclam writes it into a .cld too), never the file's mtime: a copy
# or a touch changes an mtime, not what the signatures are.
if osiris_active "$OSIRIS_P_DAEMON_SERVICE"; then d=true; else d=false; fi
if osiris_active "$OSIRIS_P_UPDATER_SERVICE"; then u=true; else u=false; fi
db=$(osiris_path /var/lib/clamav)
built="" src=""
for f in "$db/daily.cld" "$db/daily.cvd"; do
  [ -f "$f" ] || continue
  t=$(head -c 512 "$f" | tr -d '\000' | awk -F: '/^ClamAV-VDB:/ { gsub(/[[:space:]]/, "", $NF); print $NF }')
  case "$t" in '' | *[!0-9]*) continue ;; esac
  if [ -z "$built" ] || [ "$t" -gt "$built" ]; then built=$t src=${f##*/}; fi
done
age="" state=missing
if [ -n "$built" ]; then
  age=$((($(date +%s) - built) / 3600))
  if [ "$age" -lt -1 ]; then state=future
  elif [ "$age" -gt "$OSIRIS_P_MAX_SIGNATURE_AGE_HOURS" ]; then state=stale
  else state=fresh; fi
elif [ -e "$db/daily.cld" ] || [ -e "$db/daily.cvd" ]; then
  state=unreadable
fi
if [ "$d" = true ] && [ "$u" = true ] && [ "$state" = fresh ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj daemon_active "$d" updater_active "$u" signature_state "$(osiris_s "$state")" signature_age_hours "$(osiris_n "$age")" signature_db "$(osiris_s "$src")")" \
  "$(osiris_obj daemon_active true updater_active true signature_state "$(osiris_s fresh)" signature_age_hours "$(osiris_n "$OSIRIS_P_MAX_SIGNATURE_AGE_HOURS")")"
