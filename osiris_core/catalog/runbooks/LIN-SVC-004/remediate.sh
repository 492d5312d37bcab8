#!/usr/bin/env bash
# LIN-SVC-004 remediate: stop and disable every active plaintext remote-login unit.
stopped=()
for u in $OSIRIS_P_UNITS; do
  if osiris_active "$u"; then
    systemctl disable --now "$u" >&2
    stopped+=("$u")
  fi
done
if [ "${#stopped[@]}" -gt 0 ]; then
  osiris_done true "stopped and disabled ${stopped[*]}"
else
  osiris_done false "nothing to stop"
fi
