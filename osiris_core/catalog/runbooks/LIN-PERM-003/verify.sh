#!/usr/bin/env bash
# LIN-PERM-003 verify: list world-writable regular files under /etc.
etc=$(osiris_path /etc)
mapfile -t found < <(find "$etc" -xdev -type f -perm -0002 2>/dev/null | sort)
rel=()
for f in "${found[@]}"; do rel+=("${f#"$osiris_root"}"); done
if [ "${#found[@]}" -eq 0 ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj count "${#found[@]}" files "$(osiris_arr "${rel[@]:0:20}")")" \
  "$(osiris_obj count 0)"
