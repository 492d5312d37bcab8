#!/usr/bin/env bash
# RB-NIX-FW-001 remediate: restore the live ruleset from the pinned baseline.
# Same pin as detect: the policy's baseline_sha256, else the <baseline>.sha256 the module ships.
base=$(osiris_path "$OSIRIS_P_BASELINE_FILE")
[ -f "$base" ] || osiris_fail "baseline file missing"
pin=$OSIRIS_P_BASELINE_SHA256
if [ -z "$pin" ]; then
  pin=$(tr -d ' \n' <"$base.sha256" 2>/dev/null || true)
  case "$pin" in *[!0-9a-f]* | '') pin="" ;; esac
  [ "${#pin}" -eq 64 ] || osiris_fail "baseline is not pinned (no baseline_sha256, no $OSIRIS_P_BASELINE_FILE.sha256); refusing to load it"
fi
[ "$(sha256sum "$base" | awk '{ print $1 }')" = "$pin" ] || osiris_fail "baseline hash mismatch; refusing to load it"
osiris_active "$OSIRIS_P_SERVICE" || systemctl start "$OSIRIS_P_SERVICE" >&2
nft -c -f "$base" >&2
nft -f "$base" >&2
state=$(osiris_path "$OSIRIS_P_STATE_FILE")
mkdir -p "$(dirname "$state")"
nft -s -t list ruleset | sha256sum | awk '{ print $1 }' >"$state"
osiris_done true "ruleset restored from baseline"
