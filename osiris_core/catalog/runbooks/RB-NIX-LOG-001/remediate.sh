#!/usr/bin/env bash
# RB-NIX-LOG-001 remediate: restart inactive logging units and write a new canary.
done_units=()
for u in $OSIRIS_P_SERVICES; do
  if ! osiris_active "$u"; then
    systemctl restart "$u" >&2
    done_units+=("$u")
  fi
done
logger -t osiris "OSIRIS-CANARY $(date +%s)" >&2
osiris_done true "restarted: ${done_units[*]:-none}; canary written"
