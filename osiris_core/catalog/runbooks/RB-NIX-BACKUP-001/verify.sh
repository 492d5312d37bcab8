#!/usr/bin/env bash
# RB-NIX-BACKUP-001 verify: read the backup status file (key=value lines: last_backup, last_restore_test, archive, sha256).
sf=$(osiris_path "$OSIRIS_P_STATUS_FILE")
get() { [ -f "$sf" ] && sed -n "s/^$1=//p" "$sf" | tail -n 1; }
now=$(date +%s)
lb=$(get last_backup || true)
lr=$(get last_restore_test || true)
archive=$(get archive || true)
want=$(get sha256 || true)
age=""; rage=""; ck=false
case "$lb" in '' | *[!0-9]*) ;; *) age=$(((now - lb) / 3600)) ;; esac
case "$lr" in '' | *[!0-9]*) ;; *) rage=$(((now - lr) / 86400)) ;; esac
if [ -n "$archive" ] && [ -f "$(osiris_path "$archive")" ] && [ -n "$want" ]; then
  [ "$(sha256sum "$(osiris_path "$archive")" | awk '{ print $1 }')" = "$want" ] && ck=true
fi
status=compliant
if [ -z "$age" ] || [ "$age" -gt "$OSIRIS_P_MAX_AGE_HOURS" ] || [ "$ck" != true ]; then status=drift; fi
if [ -z "$rage" ] || [ "$rage" -gt "$OSIRIS_P_MAX_RESTORE_TEST_AGE_DAYS" ]; then status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj backup_age_hours "$(osiris_n "$age")" checksum_ok "$ck" restore_test_age_days "$(osiris_n "$rage")")" \
  "$(osiris_obj backup_age_hours "$(osiris_n "$OSIRIS_P_MAX_AGE_HOURS")" checksum_ok true restore_test_age_days "$(osiris_n "$OSIRIS_P_MAX_RESTORE_TEST_AGE_DAYS")")"
