#!/usr/bin/env bash
# RB-NIX-AV-001 verify: is the AV service active and is its binary the pinned one?
if osiris_active "$OSIRIS_P_SERVICE"; then a=true; else a=false; fi
bin=$(osiris_path "$OSIRIS_P_BINARY")
h=""
if [ -f "$bin" ]; then
  h=$(sha256sum "$bin" | awk '{ print $1 }')
  if [ -z "$OSIRIS_P_BINARY_SHA256" ]; then hs=unpinned
  elif [ "$h" = "$OSIRIS_P_BINARY_SHA256" ]; then hs=match
  else hs=mismatch; fi
else
  hs=missing
fi
if [ "$a" = true ] && [ "$hs" != mismatch ] && [ "$hs" != missing ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj service_active "$a" binary_sha256 "$(osiris_s "$h")" hash_state "$(osiris_s "$hs")")" \
  "$(osiris_obj service_active true binary_sha256 "$(osiris_s "$OSIRIS_P_BINARY_SHA256")" hash_state "$(osiris_s match)")"
