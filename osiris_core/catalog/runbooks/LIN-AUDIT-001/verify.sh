#!/usr/bin/env bash
# LIN-AUDIT-001 verify: are the audit watches present (loaded rules on a live host, rule files in a sandbox)?
if [ -z "$osiris_root" ] && command -v auditctl >/dev/null 2>&1; then
  rules=$(auditctl -l 2>/dev/null || true)
else
  rules=$(cat "$(osiris_path /etc/audit/rules.d)"/*.rules 2>/dev/null || true)
fi
watch=(/etc/passwd /etc/shadow /etc/group /etc/gshadow)
missing=()
for f in "${watch[@]}"; do
  if ! printf '%s\n' "$rules" | grep -Eq -- "-w $f( |$)"; then missing+=("$f"); fi
done
if [ "${#missing[@]}" -eq 0 ]; then status=compliant; else status=drift; fi
osiris_emit "$status" "$(osiris_obj missing_watches "$(osiris_arr "${missing[@]}")")" "$(osiris_obj missing_watches '[]')"
