#!/usr/bin/env bash
# LIN-PERM-002 remediate: set the mode and owner of /etc/ssh/sshd_config, saving the old mode for rollback.
f=$(osiris_path /etc/ssh/sshd_config)
[ -e "$f" ] || osiris_fail "/etc/ssh/sshd_config not found"
state=$(osiris_path /var/lib/osiris/rollback)
mkdir -p "$state"
osiris_mode "$f" >"$state/$OSIRIS_RUNBOOK.mode"
want_owner=$(osiris_owner)
if [ "$(stat -c '%U' "$f")" != "$want_owner" ]; then chown "$want_owner" "$f"; fi
chmod "$OSIRIS_P_TARGET_MODE" "$f"
osiris_done true "/etc/ssh/sshd_config set to mode $OSIRIS_P_TARGET_MODE owner $want_owner"
