#!/usr/bin/env bash
# RB-NIX-AV-001 detect: is the AV service active and is its binary the pinned one?
if osiris_active "$OSIRIS_P_SERVICE"; then a=true; else a=false; fi
bin=$(osiris_path "$OSIRIS_P_BINARY")
# The pin: the policy's binary_sha256, else /etc/osiris/<binary name>.sha256, which the appliance
# module computes when it builds the system (part of the signed closure, read-only to the agent).
pin=$OSIRIS_P_BINARY_SHA256
src=policy
if [ -z "$pin" ]; then
  src=module
  pin=$(tr -d ' \n' <"$(osiris_path "/etc/osiris/${OSIRIS_P_BINARY##*/}.sha256")" 2>/dev/null || true)
  case "$pin" in *[!0-9a-f]* | '') pin="" ;; esac
  [ "${#pin}" -eq 64 ] || { pin=""; src=none; }
fi
h=""
if [ -f "$bin" ]; then
  h=$(sha256sum "$bin" | awk '{ print $1 }')
  if [ -z "$pin" ]; then hs=unpinned
  elif [ "$h" = "$pin" ]; then hs=match
  else hs=mismatch; fi
else
  hs=missing
fi
if [ "$a" = true ] && [ "$hs" != mismatch ] && [ "$hs" != missing ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj service_active "$a" binary_sha256 "$(osiris_s "$h")" hash_state "$(osiris_s "$hs")" pin_source "$(osiris_s "$src")")" \
  "$(osiris_obj service_active true binary_sha256 "$(osiris_s "$pin")" hash_state "$(osiris_s match)")"
