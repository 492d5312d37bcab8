#!/usr/bin/env bash
# LIN-ACCT-002 verify: is PASS_MAX_DAYS at most the policy's maximum?
value=$(osiris_conf_get PASS_MAX_DAYS "$(osiris_path /etc/login.defs)")
case "$value" in '' | *[!0-9]*) value=99999 ;; esac
if [ "$value" -le "$OSIRIS_P_MAX_DAYS" ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj pass_max_days "$(osiris_n "$value")")" \
  "$(osiris_obj pass_max_days "$(osiris_n "$OSIRIS_P_MAX_DAYS")")"
