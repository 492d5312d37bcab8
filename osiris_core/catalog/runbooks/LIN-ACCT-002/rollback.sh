#!/usr/bin/env bash
# LIN-ACCT-002 rollback: restore login.defs as it was before remediate.
f=$(osiris_path /etc/login.defs)
if [ -f "$f.osiris-bak-$OSIRIS_RUNBOOK" ]; then
  mv "$f.osiris-bak-$OSIRIS_RUNBOOK" "$f"
  osiris_done true "login.defs restored"
else
  osiris_done false "no saved login.defs"
fi
