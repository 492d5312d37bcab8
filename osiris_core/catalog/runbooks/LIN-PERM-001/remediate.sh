#!/usr/bin/env bash
# LIN-PERM-001 remediate: set the mode and owner of /etc/shadow, saving the old mode for rollback.
f=$(osiris_path /etc/shadow)
[ -e "$f" ] || osiris_fail "/etc/shadow not found"
state=$(osiris_path /var/lib/osiris/rollback)
mkdir -p "$state"
osiris_mode "$f" >"$state/$OSIRIS_RUNBOOK.mode"
want_owner=$(osiris_owner)
if [ "$(stat -c '%U' "$f")" != "$want_owner" ]; then chown "$want_owner" "$f"; fi
chmod "$OSIRIS_P_TARGET_MODE" "$f"
osiris_done true "/etc/shadow set to mode $OSIRIS_P_TARGET_MODE owner $want_owner"
