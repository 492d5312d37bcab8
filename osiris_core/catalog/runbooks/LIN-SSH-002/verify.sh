#!/usr/bin/env bash
# LIN-SSH-002 verify: is PasswordAuthentication set to the expected value in the effective sshd configuration?
mapfile -t files < <(osiris_sshd_files)
value=$(osiris_conf_get PasswordAuthentication "${files[@]}")
value=${value:-unset}
if [ "$value" = "no" ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj password_authentication "$(osiris_s "$value")")" \
  "$(osiris_obj password_authentication "$(osiris_s no)")"
