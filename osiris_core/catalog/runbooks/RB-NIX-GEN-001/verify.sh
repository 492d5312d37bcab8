#!/usr/bin/env bash
# RB-NIX-GEN-001 verify: compare /run/current-system with the desired system closure and check the profile's age.
[ -n "$OSIRIS_P_DESIRED_SYSTEM" ] || osiris_fail "desired_system is not set in the policy"
cur=$(readlink "$(osiris_path /run/current-system)" || true)
profile=$(osiris_path /nix/var/nix/profiles/system)
age=""
if [ -L "$profile" ]; then
  age=$((($(date +%s) - $(stat -c '%Y' "$profile")) / 86400))
fi
status=compliant
if [ "$cur" != "$OSIRIS_P_DESIRED_SYSTEM" ]; then status=drift; fi
if [ -n "$age" ] && [ "$age" -gt "$OSIRIS_P_MAX_GENERATION_AGE_DAYS" ]; then status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj current_system "$(osiris_s "$cur")" generation_age_days "$(osiris_n "$age")")" \
  "$(osiris_obj current_system "$(osiris_s "$OSIRIS_P_DESIRED_SYSTEM")" generation_age_days "$(osiris_n "$OSIRIS_P_MAX_GENERATION_AGE_DAYS")")"
