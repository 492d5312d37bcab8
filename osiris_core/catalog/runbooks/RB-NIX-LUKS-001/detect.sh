#!/usr/bin/env bash
# RB-NIX-LUKS-001 detect: is every listed volume a LUKS mapping?
# Reads the device-mapper uuid from sysfs (CRYPT-LUKS1-…/CRYPT-LUKS2-…), which needs no privilege:
# the agent does not run as root, and `cryptsetup status` would fail and report every volume bad.
bad=()
checked=()
for v in $OSIRIS_P_VOLUMES; do
  checked+=("$v")
  luks=no
  for dm in "$(osiris_path /sys/block)"/dm-*; do
    [ -r "$dm/dm/name" ] || continue
    if [ "$(cat "$dm/dm/name")" = "$v" ] && grep -q '^CRYPT-LUKS' "$dm/dm/uuid" 2>/dev/null; then
      luks=yes
    fi
  done
  if [ "$luks" != yes ]; then bad+=("$v"); fi
done
if [ "${#bad[@]}" -eq 0 ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj unencrypted "$(osiris_arr "${bad[@]}")" checked "$(osiris_arr "${checked[@]}")")" \
  "$(osiris_obj unencrypted '[]')"
