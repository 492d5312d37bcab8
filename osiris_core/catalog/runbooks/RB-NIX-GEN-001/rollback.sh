#!/usr/bin/env bash
# RB-NIX-GEN-001 rollback: switch back to the system that ran before remediate.
saved=$(osiris_path "/var/lib/osiris/rollback/$OSIRIS_RUNBOOK.prev")
[ -s "$saved" ] || osiris_fail "no previous system recorded"
prev=$(cat "$saved")
nix-env -p "$(osiris_path /nix/var/nix/profiles/system)" --set "$prev" >&2
"$(osiris_path "$prev")/bin/switch-to-configuration" switch >&2
rm -f "$saved"
osiris_done true "switched back to $prev"
