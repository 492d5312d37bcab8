#!/usr/bin/env bash
# LIN-SSH-001 remediate: set PermitRootLogin in sshd_config (and any drop-in that sets it), then reload sshd
# -- unless the agent's own login would be cut off (it logs in as root, or as root with a password for
# prohibit-password): then nothing changes and the run is refused (the engine escalates to L3).
# The login comes from OSIRIS_CTX_* (set by the agent's transport, never by a parameter) and the host's own
# view (lib/osiris_login.sh); after the change, sshd -T -C (Match blocks included) must still let it in.
want=$OSIRIS_P_VALUE
if [ "$(osiris_login_kind)" = ssh ]; then
  auth=$(osiris_login_auth)
  while IFS= read -r u; do
    osiris_login_is_root "$u" || continue
    if [ "$want" = no ]; then
      osiris_sshd_drop_backups
      osiris_refuse "the agent logs in as root ($u): PermitRootLogin no would lock it out of this host; give the site a credential for a named user with sudo (osiris cred add --sudo) first"
    elif [ "$auth" != publickey ]; then
      osiris_sshd_drop_backups
      osiris_refuse "the agent logs in as root ($u) by $auth: PermitRootLogin prohibit-password would lock it out; give it a key or a sudo credential first"
    fi
  done < <(osiris_login_users)
fi
osiris_sshd_set_guarded PermitRootLogin "$want"
osiris_done true "PermitRootLogin set to $want"
