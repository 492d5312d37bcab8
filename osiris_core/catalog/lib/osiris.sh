# shellcheck shell=bash
# Osiris helpers, placed by render() before every Linux/NixOS phase script.
# Why: a script must print exactly one JSON object on stdout and nothing else, and clinic hosts
# have no jq, so these build JSON with printf. Every file path goes through osiris_path so tests
# can point OSIRIS_ROOT at a sandbox.

osiris_root="${OSIRIS_ROOT:-}"

# osiris_s STRING -> a JSON string literal (control characters dropped, quotes escaped).
osiris_s() {
  local s
  s=$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# osiris_n VALUE -> VALUE if it is an integer, else null.
osiris_n() {
  case "$1" in
    '' | *[!0-9-]* | -*-* | *?-*) printf 'null' ;;
    *) printf '%s' "$1" ;;
  esac
}

# osiris_b WORD -> true for true/yes/1/active/enabled, else false.
osiris_b() {
  case "$1" in
    true | yes | 1 | active | enabled) printf 'true' ;;
    *) printf 'false' ;;
  esac
}

# osiris_obj KEY JSON [KEY JSON ...] -> {"KEY":JSON,...}; values must already be JSON.
osiris_obj() {
  local out="" sep=""
  while [ "$#" -ge 2 ]; do
    out="${out}${sep}$(osiris_s "$1"):$2"
    sep=","
    shift 2
  done
  printf '{%s}' "$out"
}

# osiris_arr WORD... -> a JSON array of strings.
osiris_arr() {
  local out="" sep="" w
  for w in "$@"; do
    out="${out}${sep}$(osiris_s "$w")"
    sep=","
  done
  printf '[%s]' "$out"
}

# osiris_emit STATUS OBSERVED_JSON EXPECTED_JSON -> the one line of stdout.
osiris_emit() {
  printf '{"status":%s,"observed":%s,"expected":%s}\n' "$(osiris_s "$1")" "$2" "$3"
}

# osiris_done CHANGED ACTION -> the result of a remediate or rollback phase.
osiris_done() {
  osiris_emit compliant "$(osiris_obj changed "$(osiris_b "$1")" action "$(osiris_s "$2")")" '{}'
}

osiris_fail() {
  osiris_emit error "$(osiris_obj error "$(osiris_s "$1")")" '{}'
  exit 1
}
# errtrace: a failure inside a helper function must still end in one error object.
set -o errtrace
trap 'osiris_fail "command failed (line $LINENO): $BASH_COMMAND"' ERR

# osiris_path /etc/x -> the path under the sandbox root (empty root on real hosts).
osiris_path() {
  printf '%s%s' "$osiris_root" "$1"
}

# osiris_active UNIT -> exit 0 when systemd reports the unit active.
osiris_active() {
  systemctl is-active --quiet "$1" >/dev/null 2>&1
}

# osiris_conf_get KEY FILE... -> the first value of "KEY value" across the files, as sshd reads
# it (the first occurrence wins); files that do not exist are skipped.
osiris_conf_get() {
  local key=$1 f
  shift
  for f in "$@"; do
    [ -f "$f" ] && cat "$f"
  done | awk -v k="$key" 'tolower($1) == tolower(k) && v == "" { v = $2 } END { print v }'
}

# osiris_sshd_files -> sshd_config drop-ins (read first, via Include) then sshd_config itself.
osiris_sshd_files() {
  local d f
  d=$(osiris_path /etc/ssh/sshd_config.d)
  if [ -d "$d" ]; then
    for f in "$d"/*.conf; do
      [ -f "$f" ] && printf '%s\n' "$f"
    done
  fi
  osiris_path /etc/ssh/sshd_config
  printf '\n'
}

# osiris_conf_set FILE KEY VALUE -> replace every "KEY ..." line (commented or not); if there is
# none, insert "KEY VALUE" at the top so it lands before any sshd "Match" block.
osiris_conf_set() {
  if grep -Eqi "^[#[:space:]]*$2([[:space:]]|$)" "$1"; then
    sed -i -E "s/^[#[:space:]]*$2([[:space:]].*)?$/$2 $3/I" "$1"
  elif [ -s "$1" ]; then
    sed -i "1i $2 $3" "$1"
  else
    printf '%s %s\n' "$2" "$3" >>"$1"
  fi
}

# osiris_mode FILE -> octal mode, e.g. 640.
osiris_mode() {
  stat -c '%a' "$1"
}

# osiris_words "a b c" -> ["a","b","c"] (split on spaces; params are pattern-checked).
osiris_words() {
  local words
  read -r -a words <<<"$1"
  osiris_arr "${words[@]}"
}

# osiris_owner -> the account that must own system files: root on a host; in a sandbox, the
# sandbox root directory's owner stands in for root (tests need not run as root).
osiris_owner() {
  if [ -z "$osiris_root" ]; then
    printf 'root'
  else
    stat -c '%U' "$osiris_root"
  fi
}

# osiris_sshd_set KEY VALUE: set KEY in sshd_config and in each drop-in that sets it, keeping a
# per-runbook backup for rollback; on a live host validate with sshd -t (restore on failure),
# then reload the daemon under whichever unit name the distribution uses.
osiris_sshd_set() {
  local key=$1 val=$2 f main files
  main=$(osiris_path /etc/ssh/sshd_config)
  [ -f "$main" ] || osiris_fail "/etc/ssh/sshd_config not found"
  mapfile -t files < <(osiris_sshd_files)
  for f in "${files[@]}"; do
    if [ "$f" = "$main" ] || grep -Eqi "^[[:space:]]*${key}[[:space:]]" "$f"; then
      cp -p "$f" "$f.osiris-bak-$OSIRIS_RUNBOOK"
      osiris_conf_set "$f" "$key" "$val"
    fi
  done
  if [ -z "$osiris_root" ] && command -v sshd >/dev/null 2>&1 && ! sshd -t >&2; then
    osiris_sshd_restore || true
    osiris_fail "sshd -t rejected the new configuration; the old one was restored"
  fi
  systemctl reload ssh >&2 2>/dev/null || systemctl reload sshd >&2
}

# osiris_sshd_restore: put back the files osiris_sshd_set saved; exit 1 if there were none.
osiris_sshd_restore() {
  local f n=0 files
  mapfile -t files < <(osiris_sshd_files)
  for f in "${files[@]}"; do
    if [ -f "$f.osiris-bak-$OSIRIS_RUNBOOK" ]; then
      mv "$f.osiris-bak-$OSIRIS_RUNBOOK" "$f"
      n=$((n + 1))
    fi
  done
  [ "$n" -gt 0 ] || return 1
  systemctl reload ssh >&2 2>/dev/null || systemctl reload sshd >&2
}
