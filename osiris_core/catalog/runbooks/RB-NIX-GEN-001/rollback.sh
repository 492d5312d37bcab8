#!/usr/bin/env bash
# RB-NIX-GEN-001 rollback: switch back to the system that ran before remediate.
saved=$(osiris_path "/var/lib/osiris/rollback/$OSIRIS_RUNBOOK.prev")
[ -s "$saved" ] || osiris_fail "no previous system recorded"
prev=$(cat "$saved")
mkdir -p "$(osiris_path /var/lib/osiris/switch)"
printf '%s\n' "$prev" >"$(osiris_path /var/lib/osiris/switch/desired)"
systemctl start osiris-switch-system.service >&2 || osiris_fail "osiris-switch-system.service failed"
rm -f "$saved"
osiris_done true "switched back to $prev"
