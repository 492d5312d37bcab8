#!/usr/bin/env bash
# LIN-FW-001 remediate: turn the host firewall on without taking the clinic's services or the agent offline.
# ufw on a live host: (1) the agent's own path -- its SSH port from its session's source address -- is always
# allowed, whatever the policy says; (2) then every TCP/UDP port the host listens on (ss, loopback-only
# sockets left out), or exactly the site's allowed_ports list when the policy gives one; (3) default deny
# incoming, enable; (4) the active rules must show the agent's path, else ufw is disabled again and the run
# fails. The agent's session comes from OSIRIS_CTX_SSH_CONNECTION (lib/osiris_login.sh), never a parameter.
svc=$OSIRIS_P_FIREWALL_SERVICE
what="enabled $svc"
if [ "$svc" = ufw ] && [ -z "$osiris_root" ]; then
  command -v ufw >/dev/null 2>&1 || osiris_fail "ufw is not installed on this host (apt-get install ufw), or choose another firewall_service"
  src=$(osiris_login_conn 1)
  sport=$(osiris_login_conn 4)
  if [ "$(osiris_login_kind)" = ssh ] && { [ -z "$src" ] || [ -z "$sport" ]; }; then
    osiris_refuse "the agent's SSH session is not known (no SSH_CONNECTION): enabling a firewall could cut it off"
  fi
  ports=()
  if [ -n "$OSIRIS_P_ALLOWED_PORTS" ]; then
    read -r -a ports <<<"$OSIRIS_P_ALLOWED_PORTS"
    from="the site's allowed_ports"
  else
    command -v ss >/dev/null 2>&1 || osiris_fail "cannot list the host's listening ports (no ss): give the site's policy an allowed_ports list"
    mapfile -t ports < <(osiris_listening_ports)
    from="the ports the host listens on"
  fi
  for p in "${ports[@]}"; do
    n=${p%%/*}
    if [ "$n" -lt 1 ] || [ "$n" -gt 65535 ]; then osiris_fail "allowed port $p is not between 1 and 65535"; fi
  done
  if [ -n "$sport" ]; then
    ufw allow proto tcp from "$src" to any port "$sport" comment 'osiris agent' >&2
  fi
  for p in "${ports[@]}"; do
    ufw allow "$p" >&2
  done
  ufw default deny incoming >&2
  ufw --force enable >&2
  if [ -n "$sport" ] && ! ufw status | awk -v p="$sport/tcp" -v s="$src" '$1 == p && $2 == "ALLOW" && ($3 == s || $3 == "Anywhere") { ok = 1 } END { exit !ok }'; then
    ufw --force disable >&2 || true
    osiris_fail "after ufw enable the agent's path ($src to port $sport/tcp) is not allowed; ufw disabled again"
  fi
  what="enabled ufw: default deny incoming; allowed the agent's path ${src:+($src to $sport/tcp) }and ${#ports[@]} port(s) from $from: ${ports[*]}"
fi
systemctl enable --now "$svc" >&2
osiris_done true "$what"
