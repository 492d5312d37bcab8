#!/usr/bin/env bash
# LIN-PERM-002 verify: is /etc/ssh/sshd_config owned by root with an allowed mode?
f=$(osiris_path /etc/ssh/sshd_config)
[ -e "$f" ] || osiris_fail "/etc/ssh/sshd_config not found"
mode=$(osiris_mode "$f")
owner=$(stat -c '%U' "$f")
want_owner=$(osiris_owner)
ok=false
for m in $OSIRIS_P_ALLOWED_MODES; do
  if [ "$mode" = "$m" ]; then ok=true; fi
done
if [ "$ok" = true ] && [ "$owner" = "$want_owner" ]; then status=compliant; else status=drift; fi
osiris_emit "$status" \
  "$(osiris_obj mode "$(osiris_s "$mode")" owner "$(osiris_s "$owner")")" \
  "$(osiris_obj mode "$(osiris_words "$OSIRIS_P_ALLOWED_MODES")" owner "$(osiris_s "$want_owner")")"
