#!/usr/bin/env bash
# LIN-SVC-002 verify: is the service active?
if osiris_active "$OSIRIS_P_SERVICE"; then status=compliant; a=true; else status=drift; a=false; fi
osiris_emit "$status" \
  "$(osiris_obj service "$(osiris_s "$OSIRIS_P_SERVICE")" active "$a")" \
  "$(osiris_obj service "$(osiris_s "$OSIRIS_P_SERVICE")" active true)"
