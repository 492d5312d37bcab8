#!/usr/bin/env bash
# RB-NIX-GEN-001 remediate: switch the appliance to the desired system closure (recording the current one for rollback).
# The agent is not root: it asks the root oneshot unit osiris-switch-system.service (nix/modules)
# to switch, by writing the store path it wants; the unit refuses anything that is not a system.
desired=$OSIRIS_P_DESIRED_SYSTEM
[ -n "$desired" ] || osiris_fail "desired_system is not set in the policy"
[ -x "$(osiris_path "$desired")/bin/switch-to-configuration" ] || osiris_fail "desired system is not in the store"
state=$(osiris_path /var/lib/osiris/rollback)
mkdir -p "$state" "$(osiris_path /var/lib/osiris/switch)"
readlink "$(osiris_path /run/current-system)" >"$state/$OSIRIS_RUNBOOK.prev" || true
printf '%s\n' "$desired" >"$(osiris_path /var/lib/osiris/switch/desired)"
systemctl start osiris-switch-system.service >&2 || osiris_fail "osiris-switch-system.service failed"
osiris_done true "switched to $desired"
