#!/usr/bin/env bash
# LIN-SVC-001 verify: is ssh.service or sshd.service active?
unit=""
for u in ssh sshd; do
  if osiris_active "$u"; then unit=$u; break; fi
done
if [ -n "$unit" ]; then status=compliant; a=true; else status=drift; a=false; fi
osiris_emit "$status" "$(osiris_obj active_unit "$(osiris_s "$unit")" active "$a")" "$(osiris_obj active true)"
