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

# osiris_audit_kernel -> "available", or "unavailable: <why>" when the kernel audit subsystem
# cannot be reached (a container — audit is not namespaced —, audit=0, no auditctl). Why: on
# such a host no rule file and no auditd restart makes a single watch work; the runbooks say so
# instead of claiming or retrying a heal. In a sandbox (OSIRIS_ROOT) the kernel is not checked.
osiris_audit_kernel() {
  local out
  if [ -n "$osiris_root" ]; then
    printf 'sandbox'
  elif ! command -v auditctl >/dev/null 2>&1; then
    printf 'unavailable: auditctl is not installed'
  elif out=$(auditctl -s 2>&1); then
    printf 'available'
  else
    printf 'unavailable: auditctl -s: %s' "$(printf '%s' "$out" | tail -n 1)"
  fi
}

# osiris_audit_judge KEY WATCH... -> one result line for an audit-watch runbook. A watch is
# missing when the rule files under /etc/audit/rules.d (what auditd loads at boot) lack it, or,
# where the kernel audit is reachable, when the loaded rules (auditctl -l) lack it. Files in
# place but no kernel audit to load them into: error (nothing is watched, and no heal can fix it).
osiris_audit_judge() {
  local key=$1 kernel files loaded f status
  shift
  kernel=$(osiris_audit_kernel)
  files=$(cat "$(osiris_path /etc/audit/rules.d)"/*.rules 2>/dev/null || true)
  loaded=""
  if [ "$kernel" = available ]; then loaded=$(auditctl -l 2>/dev/null || true); fi
  local missing=()
  for f in "$@"; do
    if ! printf '%s\n' "$files" | grep -Eq -- "^-w $f( |$)"; then
      missing+=("$f")
    elif [ "$kernel" = available ] && ! printf '%s\n' "$loaded" | grep -Eq -- "^-w $f( |$)"; then
      missing+=("$f")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    status=drift
  elif [ "${kernel%%:*}" = unavailable ]; then
    osiris_emit error \
      "$(osiris_obj missing_watches '[]' kernel_audit "$(osiris_s "$kernel")" error "$(osiris_s "the $key rule files are in place but the kernel audit subsystem is ${kernel}: nothing is watched")")" \
      "$(osiris_obj missing_watches '[]' kernel_audit '"available"')"
    return 0
  else
    status=compliant
  fi
  osiris_emit "$status" \
    "$(osiris_obj missing_watches "$(osiris_arr "${missing[@]}")" kernel_audit "$(osiris_s "$kernel")")" \
    "$(osiris_obj missing_watches '[]' kernel_audit '"available"')"
}

# osiris_audit_write FILE KEY WATCH... -> add the missing "-w WATCH -p wa -k KEY" lines to FILE,
# regenerate /etc/audit/audit.rules (augenrules) and load it where the kernel audit is reachable;
# where it is not, fail saying so (the files stay: they are what auditd loads at boot).
osiris_audit_write() {
  local out=$1 key=$2 dir kernel f
  shift 2
  dir=$(dirname "$out")
  mkdir -p "$dir"
  for f in "$@"; do
    grep -Eq -- "^-w $f( |$)" "$out" 2>/dev/null || printf -- '-w %s -p wa -k %s\n' "$f" "$key" >>"$out"
  done
  chmod 0640 "$out"
  if [ -n "$osiris_root" ]; then return 0; fi
  command -v augenrules >/dev/null 2>&1 || osiris_fail "augenrules not found: is auditd installed?"
  kernel=$(osiris_audit_kernel)
  if [ "$kernel" != available ]; then
    augenrules >&2 || osiris_fail "augenrules could not regenerate /etc/audit/audit.rules"
    osiris_fail "rules written to ${out#"$osiris_root"} and /etc/audit/audit.rules regenerated, but the kernel audit subsystem is ${kernel}: nothing can be loaded (a container, or audit=0 on the kernel command line)"
  fi
  augenrules --load >&2 || osiris_fail "augenrules --load failed (auditctl rejected the rules?)"
}

# osiris_installed UNIT -> exit 0 when systemd knows a unit file for UNIT (enabled, disabled,
# static, masked...); a unit that is not installed prints nothing on stdout.
osiris_installed() {
  [ -n "$(systemctl is-enabled "$1" 2>/dev/null || true)" ]
}

# osiris_journal_storage -> journald's effective Storage= (the last one across journald.conf and
# its drop-ins, read in the order journald applies them; "auto" when unset).
osiris_journal_storage() {
  local f d drop=()
  for d in /usr/lib/systemd/journald.conf.d /run/systemd/journald.conf.d /etc/systemd/journald.conf.d; do
    for f in "$(osiris_path "$d")"/*.conf; do
      if [ -f "$f" ]; then drop+=("$f"); fi
    done
  done
  {
    f=$(osiris_path /etc/systemd/journald.conf)
    if [ -f "$f" ]; then cat "$f"; fi
    # drop-ins apply in file-name order whatever their directory (a stable sort keeps /etc last
    # among equal names, as /etc overrides)
    if [ "${#drop[@]}" -gt 0 ]; then
      printf '%s\n' "${drop[@]}" | awk -F/ '{ print $NF "\t" $0 }' | sort -s -t "$(printf '\t')" -k1,1 |
        cut -f2 | while IFS= read -r f; do cat "$f"; done
    fi
  } | awk -F= '/^[[:space:]]*Storage[[:space:]]*=/ { v = $2; gsub(/[[:space:]]/, "", v) } END { print (v == "" ? "auto" : v) }'
}

# osiris_logger_judge SERVICE -> one result line: the host's system logger. Where SERVICE
# (rsyslog, syslog-ng) is installed it must be active. Where it is not — Debian 12 installs no
# syslog daemon — the systemd journal IS the system log: journald must be active and its storage
# persistent (Storage=persistent, or auto with /var/log/journal present), or logs die at reboot.
osiris_logger_judge() {
  local svc=$1 a=false p=false storage
  if osiris_installed "$svc"; then
    if osiris_active "$svc"; then a=true; fi
    if [ "$a" = true ]; then status=compliant; else status=drift; fi
    osiris_emit "$status" \
      "$(osiris_obj service "$(osiris_s "$svc")" active "$a")" \
      "$(osiris_obj service "$(osiris_s "$svc")" active true)"
    return 0
  fi
  if osiris_active systemd-journald; then a=true; fi
  storage=$(osiris_journal_storage)
  case "$storage" in
    persistent) p=true ;;
    auto) if [ -d "$(osiris_path /var/log/journal)" ]; then p=true; fi ;;
  esac
  if [ "$a" = true ] && [ "$p" = true ]; then status=compliant; else status=drift; fi
  osiris_emit "$status" \
    "$(osiris_obj service '"systemd-journald"' active "$a" persistent "$p" storage "$(osiris_s "$storage")")" \
    "$(osiris_obj service '"systemd-journald"' active true persistent true)"
}
