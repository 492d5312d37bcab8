#!/usr/bin/env bash
# LIN-PERM-001 rollback: restore the mode /etc/shadow had before remediate.
f=$(osiris_path /etc/shadow)
saved=$(osiris_path "/var/lib/osiris/rollback/$OSIRIS_RUNBOOK.mode")
if [ -f "$saved" ]; then
  chmod "$(cat "$saved")" "$f"
  rm -f "$saved"
  osiris_done true "mode restored"
else
  osiris_done false "no saved mode"
fi
