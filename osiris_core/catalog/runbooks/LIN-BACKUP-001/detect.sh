#!/usr/bin/env bash
# LIN-BACKUP-001 detect (only): every backup source found on the host last SUCCEEDED within
# max_age_hours. Read without running a backup and without any repository credential:
# - restic / borg / borgmatic systemd services (run by their timers): `systemctl show` of
#   Result, ExecMainStatus and ExecMainExitTimestamp; systemd keeps these since boot only, so a
#   unit that has not run since boot (or whose last run failed) is not fresh.
# - rsnapshot: the last "<run>: completed successfully" line of the logfile named in
#   /etc/rsnapshot.conf ("[2024-01-15T03:30:01] ..." local time); no logfile set: not readable.
# - Veeam Agent for Linux: the newest "Success" row of `veeamconfig session list`.
# Nothing found is drift: a host with no backup we can see is never compliant.
now=$(date +%s)
sources=() stale=() oldest=""
fresh() { # NAME EPOCH_OR_EMPTY
  local age
  sources+=("$1")
  case "$2" in '' | *[!0-9]*) stale+=("$1"); oldest=unknown; return 0 ;; esac
  age=$(((now - $2) / 3600))
  if [ "$oldest" != unknown ] && { [ -z "$oldest" ] || [ "$age" -gt "$oldest" ]; }; then oldest=$age; fi
  if [ "$age" -gt "$OSIRIS_P_MAX_AGE_HOURS" ] || [ "$age" -lt -1 ]; then stale+=("$1"); fi
}
mapfile -t units < <(
  { systemctl list-unit-files --type=service --no-legend --plain 'restic*' 'borg*' 2>/dev/null || true
    systemctl list-units --all --type=service --no-legend --plain 'restic*' 'borg*' 2>/dev/null || true
  } | awk '{ print $1 }' | grep -E '^(restic|borg)[A-Za-z0-9@._-]*\.service$' | grep -v '@\.service$' | sort -u || true
)
for u in "${units[@]}"; do
  props=$(systemctl show -p Result -p ExecMainStatus -p ExecMainExitTimestamp --timestamp=unix "$u" 2>/dev/null || true)
  res=$(sed -n 's/^Result=//p' <<<"$props")
  code=$(sed -n 's/^ExecMainStatus=//p' <<<"$props")
  ts=$(sed -n 's/^ExecMainExitTimestamp=@\{0,1\}//p' <<<"$props")
  if [ "$res" = success ] && [ "$code" = 0 ]; then fresh "systemd:$u" "$ts"; else fresh "systemd:$u" ""; fi
done
conf=$(osiris_path /etc/rsnapshot.conf)
if [ -f "$conf" ]; then
  log=$(awk -F'\t' '$1 == "logfile" { print $2; exit }' "$conf")
  when=""
  if [ -n "$log" ] && [ -f "$(osiris_path "$log")" ]; then
    stamp=$(grep -E '^\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\] .*: completed successfully$' "$(osiris_path "$log")" | tail -n 1 | cut -c2-20 || true)
    [ -n "$stamp" ] && when=$(date -d "${stamp/T/ }" +%s 2>/dev/null || true)
  fi
  fresh rsnapshot "$when"
fi
if command -v veeamconfig >/dev/null 2>&1; then
  last=$(veeamconfig session list 2>/dev/null | awk '$0 ~ / Success / && $(NF-1) ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/ { print $(NF-1) " " $NF }' | sort | tail -n 1 || true)
  when=""
  [ -n "$last" ] && when=$(date -d "$last" +%s 2>/dev/null || true)
  fresh veeam "$when"
fi
if [ "${#sources[@]}" -gt 0 ] && [ "${#stale[@]}" -eq 0 ]; then status=compliant; else status=drift; fi
[ "$oldest" = unknown ] && oldest=""
osiris_emit "$status" \
  "$(osiris_obj sources "$(osiris_arr "${sources[@]}")" stale "$(osiris_arr "${stale[@]}")" oldest_success_age_hours "$(osiris_n "$oldest")")" \
  "$(osiris_obj stale '[]' oldest_success_age_hours "$(osiris_n "$OSIRIS_P_MAX_AGE_HOURS")")"
