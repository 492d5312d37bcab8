#!/usr/bin/env bash
# LIN-SSH-003 verify: is MaxAuthTries at or below the policy limit?
mapfile -t files < <(osiris_sshd_files)
value=$(osiris_conf_get MaxAuthTries "${files[@]}")
value=${value:-6}
case "$value" in '' | *[!0-9]*) value=999 ;; esac
if [ "$value" -le "$OSIRIS_P_MAX_AUTH_TRIES" ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj max_auth_tries "$(osiris_n "$value")")" \
  "$(osiris_obj max_auth_tries "$(osiris_n "$OSIRIS_P_MAX_AUTH_TRIES")")"
