#!/usr/bin/env bash
# RB-NIX-FW-001 detect: compare the live nftables ruleset with the one loaded from the pinned baseline.
# The pin is the policy's baseline_sha256; when the policy sets none, it is the <baseline>.sha256
# file the appliance module ships beside the baseline (both are part of the signed system
# closure, read-only to the agent). No pin at all is drift ("unpinned"), never a pass.
base=$(osiris_path "$OSIRIS_P_BASELINE_FILE")
pin=$OSIRIS_P_BASELINE_SHA256
src=policy
if [ -z "$pin" ]; then
  src=module
  pin=$(tr -d ' \n' <"$base.sha256" 2>/dev/null || true)
  case "$pin" in *[!0-9a-f]* | '') pin="" ;; esac
  [ "${#pin}" -eq 64 ] || pin=""
fi
if osiris_active "$OSIRIS_P_SERVICE"; then a=true; else a=false; fi
if [ ! -f "$base" ]; then bs=missing
elif [ -z "$pin" ]; then bs=unpinned
elif [ "$(sha256sum "$base" | awk '{ print $1 }')" = "$pin" ]; then bs=match
else bs=mismatch; fi
# -t (terse) leaves set elements out: the egress allowlist's resolved addresses change every
# refresh without the ruleset changing.
live=$(nft -s -t list ruleset | sha256sum | awk '{ print $1 }')
rec=$(cat "$(osiris_path "$OSIRIS_P_STATE_FILE")" 2>/dev/null || true)
if [ -z "$rec" ]; then rs=unrecorded
elif [ "$rec" = "$live" ]; then rs=match
else rs=changed; fi
if [ "$a" = true ] && [ "$bs" = match ] && [ "$rs" = match ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj service_active "$a" baseline_state "$(osiris_s "$bs")" pin_source "$(osiris_s "$src")" ruleset_state "$(osiris_s "$rs")" ruleset_sha256 "$(osiris_s "$live")")" \
  "$(osiris_obj service_active true baseline_state "$(osiris_s match)" ruleset_state "$(osiris_s match)")"
