#!/usr/bin/env bash
# LIN-SSH-002 remediate: set PasswordAuthentication no in sshd_config (and any drop-in that sets it), then
# reload sshd -- unless the agent itself logs in with a password (or says nothing of how it logs in): then
# nothing changes and the run is refused (the engine escalates to L3). After the change, sshd -T -C (Match
# blocks included) must still let the agent's login in, or the old files are put back unreloaded.
if [ "$(osiris_login_kind)" = ssh ] && [ "$(osiris_login_auth)" != publickey ]; then
  osiris_sshd_drop_backups
  osiris_refuse "the agent logs in by $(osiris_login_auth) ($(osiris_login_users | paste -sd, -)): PasswordAuthentication no would lock it out of this host; give the site an ssh_key credential first"
fi
osiris_sshd_set_guarded PasswordAuthentication "no"
osiris_done true "PasswordAuthentication set to no"
