# shellcheck shell=bash
# Osiris helpers: the agent's own login to this host, so no runbook cuts it off (issue 15).
# Placed by render() after osiris.sh before every Linux/NixOS phase script.
#
# Where the facts come from, and why they can be trusted:
# - OSIRIS_CTX_LOGIN_USER / OSIRIS_CTX_LOGIN_AUTH (publickey|password) / OSIRIS_CTX_SUDO are set
#   by the agent's SSH transport from the Target it connects with (osiris_agent/hosts/ssh.py),
#   on the command line after sudo. They are not runbook parameters: the site's policy sets
#   parameters (OSIRIS_P_*), and nothing it sets can reach these names.
# - OSIRIS_CTX_SSH_CONNECTION is the host sshd's own "$SSH_CONNECTION" of this session
#   ("client_ip client_port server_ip server_port"), copied before sudo drops it.
# - The host's own view keeps the script honest: ${SUDO_USER:-$(id -un)} is an account to
#   protect as well, whatever the transport said.
# With no context at all and no SSH session (an old agent, a console run), the login is
# "unknown" over SSH and "none" otherwise; a guard treats unknown as the worst case.
#
# The OSIRIS_ROOT sandbox (lab/tests): the agent logs in through the test machine's own sshd,
# whose configuration is outside the sandbox; the sandbox's etc/ssh/sshd_config serves no login
# of the agent's, so there is nothing of the agent's to cut off: osiris_login_kind says
# "sandbox" and the guards pass (the lab's results do not depend on whether tests run as root).

# osiris_login_kind -> sandbox | ssh | none
osiris_login_kind() {
  if [ -n "$osiris_root" ]; then
    printf 'sandbox'
  elif [ -n "${OSIRIS_CTX_SSH_CONNECTION:-}${SSH_CONNECTION:-}${OSIRIS_CTX_LOGIN_AUTH:-}" ]; then
    printf 'ssh'
  else
    printf 'none'
  fi
}

# osiris_login_auth -> publickey | password | unknown (how the agent authenticated over SSH)
osiris_login_auth() {
  case "${OSIRIS_CTX_LOGIN_AUTH:-}" in
    publickey | password) printf '%s' "$OSIRIS_CTX_LOGIN_AUTH" ;;
    *) printf 'unknown' ;;
  esac
}

# osiris_login_users -> the accounts the agent's login uses, one per line (the transport's word
# and the host's own view; both are protected when they differ).
osiris_login_users() {
  local host
  host=${SUDO_USER:-$(id -un 2>/dev/null || true)}
  printf '%s\n%s\n' "${OSIRIS_CTX_LOGIN_USER:-}" "$host" | awk 'NF && !seen[$0]++'
}

# osiris_login_conn FIELD -> one field of the session's SSH_CONNECTION (1 client ip, 2 client
# port, 3 server ip, 4 server port), or "".
osiris_login_conn() {
  local c=${OSIRIS_CTX_SSH_CONNECTION:-${SSH_CONNECTION:-}}
  [ -n "$c" ] || return 0
  printf '%s\n' "$c" | awk -v f="$1" '{ print $f }'
}

# osiris_login_is_root USER -> exit 0 when USER is uid 0 (sshd's PermitRootLogin applies to
# uid 0, whatever the name).
osiris_login_is_root() {
  [ "$(id -u "$1" 2>/dev/null || true)" = 0 ]
}

# osiris_login_obj -> the login as a JSON object for evidence (no secret: names and a method).
osiris_login_obj() {
  local users
  mapfile -t users < <(osiris_login_users)
  osiris_obj kind "$(osiris_s "$(osiris_login_kind)")" users "$(osiris_arr "${users[@]}")" \
    auth "$(osiris_s "$(osiris_login_auth)")" sudo "$(osiris_b "${OSIRIS_CTX_SUDO:-0}")" \
    client "$(osiris_s "$(osiris_login_conn 1)")" port "$(osiris_s "$(osiris_login_conn 4)")"
}

# osiris_refuse REASON -> a remediate that will not act: one error result naming the reason and
# the login it protects, exit 1. The executor records it; the engine takes it to a person (L3).
osiris_refuse() {
  osiris_emit error \
    "$(osiris_obj error "$(osiris_s "refused: $1")" refused true login "$(osiris_login_obj)")" '{}'
  exit 1
}

# osiris_sshd_lets_in USER AUTH -> exit 0 when the sshd configuration on disk (sshd -T with the
# connection's user and addresses, so Match blocks apply) still accepts USER with AUTH; prints
# why not otherwise. AUTH unknown must pass for both methods.
osiris_sshd_lets_in() {
  local user=$1 auth=$2 spec eff prl pwa pka kbd methods m
  local addr lip lport
  addr=$(osiris_login_conn 1)
  lip=$(osiris_login_conn 3)
  lport=$(osiris_login_conn 4)
  spec="user=$user,host=${addr:-127.0.0.1},addr=${addr:-127.0.0.1}"
  if [ -n "$lip" ]; then spec="$spec,laddr=$lip"; fi
  if [ -n "$lport" ]; then spec="$spec,lport=$lport"; fi
  if ! eff=$(sshd -T -C "$spec" 2>&1); then
    printf 'sshd -T -C %s failed: %s' "$spec" "$(printf '%s' "$eff" | tail -n 1)"
    return 1
  fi
  _eff() { printf '%s\n' "$eff" | awk -v k="$1" 'tolower($1) == k { $1 = ""; sub(/^ /, ""); print; exit }'; }
  prl=$(_eff permitrootlogin)
  pwa=$(_eff passwordauthentication)
  kbd=$(_eff kbdinteractiveauthentication)
  pka=$(_eff pubkeyauthentication)
  methods=$(_eff authenticationmethods)
  for m in publickey password; do
    if [ "$auth" != unknown ] && [ "$auth" != "$m" ]; then continue; fi
    if osiris_login_is_root "$user"; then
      case "$prl:$m" in
        yes:*) ;;
        prohibit-password:publickey | without-password:publickey) ;;
        *)
          printf 'PermitRootLogin %s would refuse root (%s) logging in by %s' "$prl" "$user" "$m"
          return 1
          ;;
      esac
    fi
    if [ "$m" = password ] && [ "$pwa" != yes ] && [ "$kbd" != yes ]; then
      printf 'PasswordAuthentication %s would refuse %s logging in by password' "$pwa" "$user"
      return 1
    fi
    if [ "$m" = publickey ] && [ "$pka" != yes ]; then
      printf 'PubkeyAuthentication %s would refuse %s logging in by key' "$pka" "$user"
      return 1
    fi
    case "$methods" in
      '' | any | *"$m"*) ;;
      *)
        printf 'AuthenticationMethods %s would refuse %s logging in by %s' "$methods" "$user" "$m"
        return 1
        ;;
    esac
  done
  return 0
}

# osiris_sshd_set_guarded KEY VALUE: osiris_sshd_set, but the new configuration must still let
# the agent's own login in (osiris_sshd_lets_in for each of its accounts, Match blocks included)
# BEFORE sshd is reloaded; otherwise the saved files are put back, sshd is not reloaded and the
# run is refused. Backups a previous run left are dropped first, so a refused run's rollback has
# nothing stale to restore.
osiris_sshd_set_guarded() {
  local key=$1 val=$2 f main files why u auth
  main=$(osiris_path /etc/ssh/sshd_config)
  [ -f "$main" ] || osiris_fail "/etc/ssh/sshd_config not found"
  osiris_sshd_drop_backups
  mapfile -t files < <(osiris_sshd_files)
  for f in "${files[@]}"; do
    [ -n "$f" ] || continue
    if [ "$f" = "$main" ] || grep -Eqi "^[[:space:]]*${key}[[:space:]]" "$f"; then
      cp -p "$f" "$f.osiris-bak-$OSIRIS_RUNBOOK"
      osiris_conf_set "$f" "$key" "$val"
    fi
  done
  if [ -z "$osiris_root" ] && command -v sshd >/dev/null 2>&1; then
    if ! sshd -t >&2; then
      osiris_sshd_restore_quiet
      osiris_fail "sshd -t rejected the new configuration; the old one was restored"
    fi
    if [ "$(osiris_login_kind)" = ssh ]; then
      auth=$(osiris_login_auth)
      while IFS= read -r u; do
        if ! why=$(osiris_sshd_lets_in "$u" "$auth"); then
          osiris_sshd_restore_quiet
          osiris_refuse "$why; the old configuration was restored and sshd not reloaded"
        fi
      done < <(osiris_login_users)
    fi
  fi
  systemctl reload ssh >&2 2>/dev/null || systemctl reload sshd >&2
}

# osiris_sshd_restore_quiet: put the saved files back without reloading (nothing was loaded).
osiris_sshd_restore_quiet() {
  local f files
  mapfile -t files < <(osiris_sshd_files)
  for f in "${files[@]}"; do
    if [ -n "$f" ] && [ -f "$f.osiris-bak-$OSIRIS_RUNBOOK" ]; then
      mv "$f.osiris-bak-$OSIRIS_RUNBOOK" "$f"
    fi
  done
}

# osiris_sshd_drop_backups: forget what an earlier run of this runbook saved (a refusal must
# leave its rollback nothing stale to put back).
osiris_sshd_drop_backups() {
  local f files
  mapfile -t files < <(osiris_sshd_files)
  for f in "${files[@]}"; do
    if [ -n "$f" ]; then rm -f -- "$f.osiris-bak-$OSIRIS_RUNBOOK"; fi
  done
}

# osiris_listening_ports -> "PORT/PROTO" for every TCP/UDP socket the host listens on, except
# loopback-only ones (127.0.0.0/8, ::1, %lo): what a firewall must keep open for the clinic.
osiris_listening_ports() {
  ss -H -ltnu | awk '{
    proto = $1; addr = $5; port = addr; sub(/.*:/, "", port)
    host = addr; sub(/:[^:]*$/, "", host); gsub(/[][]/, "", host); sub(/%.*/, "", host)
    if (host ~ /^127\./ || host == "::1" || addr ~ /%lo:/ || port !~ /^[0-9]+$/) next
    print port "/" proto
  }' | sort -u
}
