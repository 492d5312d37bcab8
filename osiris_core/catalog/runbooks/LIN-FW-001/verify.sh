#!/usr/bin/env bash
# LIN-FW-001 verify: is the host firewall service active?
if osiris_active "$OSIRIS_P_FIREWALL_SERVICE"; then status=compliant; a=true; else status=drift; a=false; fi
osiris_emit "$status" \
  "$(osiris_obj service "$(osiris_s "$OSIRIS_P_FIREWALL_SERVICE")" active "$a")" \
  "$(osiris_obj service "$(osiris_s "$OSIRIS_P_FIREWALL_SERVICE")" active true)"
