#!/usr/bin/env bash
# osiris-backup: the appliance's backup job and restore test (osiris-backup.service,
# osiris-restore-test.service). RB-NIX-BACKUP-001 reads the status file this writes.
#
#   osiris-backup backup STATUS_FILE ARCHIVE_DIR KEEP PATH...
#   osiris-backup restore-test STATUS_FILE
#
# STATUS_FILE  key=value lines: last_backup (epoch s), archive (path), sha256 (of the archive),
#              last_restore_test (epoch s). Replaced atomically (temp file + mv in its
#              directory), under a lock, so a backup and a restore test never lose each other's
#              lines and RB-NIX-BACKUP-001 never reads half a file.
# backup       tars PATH... into ARCHIVE_DIR/osiris-<epoch>.tar.gz (mode 0640, group = the
#              status file's group: the agent may read and hash it, never write it), records it,
#              keeps the newest KEEP archives.
# restore-test re-hashes the recorded archive (a mismatch fails: the status is not touched, so
#              the check stays in drift), extracts it into a scratch directory and requires
#              every member to come back; only then records last_restore_test.
# OSIRIS_ROOT  prefix for every path (tests only; the units pass none), as the runbooks'
#              osiris_path does — the status file records paths without it.
set -euo pipefail
umask 0027
root=${OSIRIS_ROOT:-}
cmd=${1:?usage: osiris-backup backup|restore-test STATUS_FILE ...}
status=${2:?status file}
sf=$root$status
dir=$(dirname "$sf")
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

get() { [ -f "$sf" ] && sed -n "s/^$1=//p" "$sf" | tail -n 1; }

# write_status KEY=VALUE...: the old lines, the given keys replaced.
write_status() {
  local tmp
  tmp=$(mktemp "$dir/.status.XXXXXX")
  local lb lr ar sh kv
  lb=$(get last_backup || true); lr=$(get last_restore_test || true)
  ar=$(get archive || true); sh=$(get sha256 || true)
  for kv in "$@"; do
    case $kv in
      last_backup=*) lb=${kv#*=} ;;
      last_restore_test=*) lr=${kv#*=} ;;
      archive=*) ar=${kv#*=} ;;
      sha256=*) sh=${kv#*=} ;;
    esac
  done
  {
    [ -z "$lb" ] || printf 'last_backup=%s\n' "$lb"
    [ -z "$ar" ] || printf 'archive=%s\n' "$ar"
    [ -z "$sh" ] || printf 'sha256=%s\n' "$sh"
    [ -z "$lr" ] || printf 'last_restore_test=%s\n' "$lr"
  } >"$tmp"
  chmod 0640 "$tmp"
  chgrp --reference="$dir" "$tmp"
  mv -f "$tmp" "$sf"
}

case $cmd in
  backup)
    archives=${3:?archive dir}
    keep=${4:?keep}
    shift 4
    [ "$#" -gt 0 ] || { echo "osiris-backup: nothing to back up" >&2; exit 2; }
    mkdir -p "$root$archives"
    now=$(date +%s)
    name="$archives/osiris-$now.tar.gz"
    tmp=$(mktemp "$root$archives/.partial.XXXXXX")
    rel=()
    for p in "$@"; do rel+=("${p#/}"); done
    tar -C "$root/" -czf "$tmp" -- "${rel[@]}"
    chmod 0640 "$tmp"
    chgrp --reference="$dir" "$tmp"
    mv -f "$tmp" "$root$name"
    sum=$(sha256sum "$root$name" | awk '{ print $1 }')
    write_status "last_backup=$now" "archive=$name" "sha256=$sum"
    # keep the newest $keep archives
    mapfile -t old < <(find "$root$archives" -maxdepth 1 -name 'osiris-*.tar.gz' -printf '%f\n' | sort -t- -k2 -n -r | tail -n "+$((keep + 1))")
    for f in "${old[@]}"; do rm -f -- "$root$archives/$f"; done
    echo "osiris-backup: $name ($sum)"
    ;;
  restore-test)
    ar=$(get archive || true)
    want=$(get sha256 || true)
    if [ -z "$ar" ] || [ ! -f "$root$ar" ]; then echo "osiris-backup: no archive recorded" >&2; exit 1; fi
    got=$(sha256sum "$root$ar" | awk '{ print $1 }')
    [ "$got" = "$want" ] || { echo "osiris-backup: $ar does not match its recorded sha256" >&2; exit 1; }
    scratch=$(mktemp -d)
    trap 'rm -rf -- "$scratch"' EXIT
    tar -C "$scratch" -xzf "$root$ar"
    listed=$(tar -tzf "$root$ar" | grep -vc '/$' || true)
    found=$(find "$scratch" -mindepth 1 ! -type d | wc -l)
    [ "$found" -eq "$listed" ] || { echo "osiris-backup: restored $found of $listed files" >&2; exit 1; }
    write_status "last_restore_test=$(date +%s)"
    echo "osiris-backup: restore test of $ar passed ($found files)"
    ;;
  *) echo "osiris-backup: unknown command $cmd" >&2; exit 2 ;;
esac
