#!/usr/bin/env bash
# RB-NIX-FW-001 verify: compare the live nftables ruleset with the one loaded from the pinned baseline.
[ -n "$OSIRIS_P_BASELINE_SHA256" ] || osiris_fail "baseline_sha256 is not set in the policy"
if osiris_active "$OSIRIS_P_SERVICE"; then a=true; else a=false; fi
base=$(osiris_path "$OSIRIS_P_BASELINE_FILE")
if [ ! -f "$base" ]; then bs=missing
elif [ "$(sha256sum "$base" | awk '{ print $1 }')" = "$OSIRIS_P_BASELINE_SHA256" ]; then bs=match
else bs=mismatch; fi
live=$(nft -s list ruleset | sha256sum | awk '{ print $1 }')
rec=$(cat "$(osiris_path "$OSIRIS_P_STATE_FILE")" 2>/dev/null || true)
if [ -z "$rec" ]; then rs=unrecorded
elif [ "$rec" = "$live" ]; then rs=match
else rs=changed; fi
if [ "$a" = true ] && [ "$bs" = match ] && [ "$rs" = match ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj service_active "$a" baseline_state "$(osiris_s "$bs")" ruleset_state "$(osiris_s "$rs")" ruleset_sha256 "$(osiris_s "$live")")" \
  "$(osiris_obj service_active true baseline_state "$(osiris_s match)" ruleset_state "$(osiris_s match)")"
