#!/usr/bin/env bash
# RB-NIX-BACKUP-001 remediate: run the backup and/or the restore test, whichever is overdue.
sf=$(osiris_path "$OSIRIS_P_STATUS_FILE")
get() { [ -f "$sf" ] && sed -n "s/^$1=//p" "$sf" | tail -n 1; }
now=$(date +%s)
lb=$(get last_backup || true)
lr=$(get last_restore_test || true)
archive=$(get archive || true)
want=$(get sha256 || true)
ck=false
if [ -n "$archive" ] && [ -f "$(osiris_path "$archive")" ] && [ -n "$want" ]; then
  [ "$(sha256sum "$(osiris_path "$archive")" | awk '{ print $1 }')" = "$want" ] && ck=true
fi
ran=()
case "$lb" in '' | *[!0-9]*) lb=0 ;; esac
case "$lr" in '' | *[!0-9]*) lr=0 ;; esac
if [ $(((now - lb) / 3600)) -gt "$OSIRIS_P_MAX_AGE_HOURS" ] || [ "$ck" != true ]; then
  systemctl start "$OSIRIS_P_BACKUP_SERVICE" >&2
  ran+=("$OSIRIS_P_BACKUP_SERVICE")
fi
if [ $(((now - lr) / 86400)) -gt "$OSIRIS_P_MAX_RESTORE_TEST_AGE_DAYS" ]; then
  systemctl start "$OSIRIS_P_RESTORE_TEST_SERVICE" >&2
  ran+=("$OSIRIS_P_RESTORE_TEST_SERVICE")
fi
osiris_done true "started ${ran[*]}"
