#!/usr/bin/env bash
# osiris-switch-system: the ROOT half of RB-NIX-GEN-001, run by osiris-switch-system.service.
#
#   osiris-switch-system REQUEST STATE_DIR KEYS_FILE PINS_FILE [ROOT]
#
# REQUEST    <agent state_dir>/switch/request.json, written by the (unprivileged) agent:
#            {"action":"switch","release":<signed osiris.release/1>} or {"action":"rollback"}
# STATE_DIR  root's own directory (/var/lib/osiris-switch): the system recorded before the
#            last switch (`previous`), when and to what it switched (`pending.json`, for the
#            update guard) and, without configured keys, the trusted keys file
# KEYS_FILE  the vkeys a release must be signed by (one per line): the NixOS option
#            privileges.releaseKeys, or STATE_DIR/trusted-keys seeded once from PINS_FILE
# ROOT       prefix for the store, profile and /run paths (tests only; the unit passes none)
#
# The store path to switch to comes ONLY from `python -m osiris_core.release switch-request`
# ($OSIRIS_RELEASE_VERIFY), which re-checks the release signature against KEYS_FILE (a rollback:
# the path this script itself recorded). "Looks like a NixOS system" is checked too, never
# instead. Root writes only into STATE_DIR and the system profile.
set -euo pipefail
req=$1
state=$2
keys=$3
pins=$4
root=${5:-}
verify=${OSIRIS_RELEASE_VERIFY:?the unit sets OSIRIS_RELEASE_VERIFY}
nix_env=${OSIRIS_NIX_ENV:-nix-env}

seed=()
if [ "$keys" = "$state/trusted-keys" ]; then seed=(--seed-from "$pins"); fi
# shellcheck disable=SC2086 # $verify is a command line set by the unit
desired=$($verify switch-request --request "$req" --keys "$keys" --previous "$state/previous" "${seed[@]}")
if ! [[ "$desired" =~ ^/nix/store/[0-9a-z]{32}-[A-Za-z0-9+._?=-]{1,180}$ ]]; then
  echo "refusing: verifier returned no store path" >&2
  exit 1
fi
for f in bin/switch-to-configuration nixos-version kernel; do
  [ -e "$root$desired/$f" ] || { echo "refusing: $desired is not a NixOS system ($f)" >&2; exit 1; }
done
current=$(readlink "$root/run/current-system" || true)
recorded=$(cat "$state/previous" 2>/dev/null || true)
if [ "$current" != "$desired" ]; then
  if [ "$desired" = "$recorded" ]; then
    # back to the system recorded before the last switch (a rollback): nothing to guard
    rm -f "$state/pending.json"
  else
    # when and to what, for osiris-update-guard (osiris_core.release_guard): it rolls back to
    # $current unless the new agent confirms health within its deadline
    printf '{"at":%s,"previous":"%s","system":"%s"}\n' "$(date +%s)" "$current" "$desired" \
      >"$state/pending.json.tmp"
    chmod 0644 "$state/pending.json.tmp"
    mv -f "$state/pending.json.tmp" "$state/pending.json"
  fi
  printf '%s\n' "$current" >"$state/previous.tmp"
  mv -f "$state/previous.tmp" "$state/previous"
fi
"$nix_env" -p "$root/nix/var/nix/profiles/system" --set "$desired"
"$root$desired/bin/switch-to-configuration" switch
rm -f "$req"
echo "switched to $desired"
