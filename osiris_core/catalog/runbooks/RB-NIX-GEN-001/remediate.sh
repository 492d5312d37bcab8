#!/usr/bin/env bash
# RB-NIX-GEN-001 remediate: switch the appliance to the desired system closure (recording the current one for rollback).
desired=$OSIRIS_P_DESIRED_SYSTEM
[ -n "$desired" ] || osiris_fail "desired_system is not set in the policy"
[ -x "$(osiris_path "$desired")/bin/switch-to-configuration" ] || osiris_fail "desired system is not in the store"
state=$(osiris_path /var/lib/osiris/rollback)
mkdir -p "$state"
readlink "$(osiris_path /run/current-system)" >"$state/$OSIRIS_RUNBOOK.prev" || true
nix-env -p "$(osiris_path /nix/var/nix/profiles/system)" --set "$desired" >&2
"$(osiris_path "$desired")/bin/switch-to-configuration" switch >&2
osiris_done true "switched to $desired"
