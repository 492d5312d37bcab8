#!/usr/bin/env bash
# LIN-SVC-004 verify: is any plaintext remote-login unit active?
active=()
for u in $OSIRIS_P_UNITS; do
  if osiris_active "$u"; then active+=("$u"); fi
done
if [ "${#active[@]}" -eq 0 ]; then status=compliant; else status=drift; fi
osiris_emit "$status" "$(osiris_obj active_units "$(osiris_arr "${active[@]}")")" "$(osiris_obj active_units '[]')"
