#!/usr/bin/env bash
# RB-NIX-GEN-001 remediate: switch the appliance to the desired system closure (recording the current one for rollback).
# The agent is not root: it asks the root oneshot unit osiris-switch-system.service (nix/modules)
# to switch by writing a switch request that carries the SIGNED release document naming the
# desired system; the unit verifies that signature itself before it switches to anything.
desired=$OSIRIS_P_DESIRED_SYSTEM
[ -n "$desired" ] || osiris_fail "desired_system is not set in the policy"
[ -n "${OSIRIS_RELEASE_DESIRED_SYSTEM:-}" ] || osiris_fail "no signed release document names the desired system"
[ -x "$(osiris_path "$desired")/bin/switch-to-configuration" ] || osiris_fail "desired system is not in the store"
state=$(osiris_path /var/lib/osiris/rollback)
switch=$(osiris_path /var/lib/osiris/switch)
mkdir -p "$state" "$switch"
readlink "$(osiris_path /run/current-system)" >"$state/$OSIRIS_RUNBOOK.prev" || true
printf '%s' "$OSIRIS_RELEASE_DESIRED_SYSTEM" | base64 -d >"$switch/request.json.tmp"
mv -f "$switch/request.json.tmp" "$switch/request.json"
systemctl start osiris-switch-system.service >&2 || osiris_fail "osiris-switch-system.service refused or failed"
osiris_done true "switched to $desired"
