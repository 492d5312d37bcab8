#!/usr/bin/env bash
# LIN-SSH-001 verify: is PermitRootLogin set to the expected value in the effective sshd configuration?
mapfile -t files < <(osiris_sshd_files)
value=$(osiris_conf_get PermitRootLogin "${files[@]}")
value=${value:-unset}
if [ "$value" = "$OSIRIS_P_VALUE" ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj permit_root_login "$(osiris_s "$value")")" \
  "$(osiris_obj permit_root_login "$(osiris_s "$OSIRIS_P_VALUE")")"
