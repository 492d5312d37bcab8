#!/usr/bin/env bash
# RB-NIX-LUKS-001 detect: is every listed volume a LUKS mapping?
bad=()
checked=()
for v in $OSIRIS_P_VOLUMES; do
  checked+=("$v")
  if ! cryptsetup status "$v" 2>/dev/null | grep -Eq 'type:[[:space:]]+LUKS'; then bad+=("$v"); fi
done
if [ "${#bad[@]}" -eq 0 ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj unencrypted "$(osiris_arr "${bad[@]}")" checked "$(osiris_arr "${checked[@]}")")" \
  "$(osiris_obj unencrypted '[]')"
