#!/usr/bin/env bash
# RB-NIX-TIME-001 verify: is the clock synchronised?
if osiris_active "$OSIRIS_P_SERVICE"; then a=true; else a=false; fi
sync=$(timedatectl show -p NTPSynchronized --value 2>/dev/null || echo unknown)
if [ "$a" = true ] && [ "$sync" = yes ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj service_active "$a" ntp_synchronized "$(osiris_b "$sync")")" \
  "$(osiris_obj service_active true ntp_synchronized true)"
