#!/usr/bin/env bash
# RB-NIX-GEN-001 rollback: switch back to the system that ran before remediate. The root unit
# switches to the system IT recorded before its last switch; the agent names no path here.
saved=$(osiris_path "/var/lib/osiris/rollback/$OSIRIS_RUNBOOK.prev")
[ -s "$saved" ] || osiris_fail "no previous system recorded"
prev=$(cat "$saved")
switch=$(osiris_path /var/lib/osiris/switch)
mkdir -p "$switch"
printf '{"action":"rollback"}' >"$switch/request.json.tmp"
mv -f "$switch/request.json.tmp" "$switch/request.json"
systemctl start osiris-switch-system.service >&2 || osiris_fail "osiris-switch-system.service failed"
rm -f "$saved"
osiris_done true "switched back to $prev"
