#!/usr/bin/env bash
# LIN-ACCT-002 remediate: set PASS_MAX_DAYS in login.defs.
f=$(osiris_path /etc/login.defs)
[ -f "$f" ] || osiris_fail "/etc/login.defs not found"
cp -p "$f" "$f.osiris-bak-$OSIRIS_RUNBOOK"
osiris_conf_set "$f" PASS_MAX_DAYS "$OSIRIS_P_MAX_DAYS"
osiris_done true "PASS_MAX_DAYS set to $OSIRIS_P_MAX_DAYS"
