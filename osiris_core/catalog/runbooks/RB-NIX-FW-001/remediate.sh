#!/usr/bin/env bash
# RB-NIX-FW-001 remediate: restore the live ruleset from the pinned baseline.
base=$(osiris_path "$OSIRIS_P_BASELINE_FILE")
[ -f "$base" ] || osiris_fail "baseline file missing"
[ "$(sha256sum "$base" | awk '{ print $1 }')" = "$OSIRIS_P_BASELINE_SHA256" ] || osiris_fail "baseline hash mismatch; refusing to load it"
osiris_active "$OSIRIS_P_SERVICE" || systemctl start "$OSIRIS_P_SERVICE" >&2
nft -c -f "$base" >&2
nft -f "$base" >&2
state=$(osiris_path "$OSIRIS_P_STATE_FILE")
mkdir -p "$(dirname "$state")"
nft -s list ruleset | sha256sum | awk '{ print $1 }' >"$state"
osiris_done true "ruleset restored from baseline"
