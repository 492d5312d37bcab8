#!/usr/bin/env bash
# LIN-AUDIT-001 remediate: add the missing watches to an Osiris rules file and load it.
dir=$(osiris_path /etc/audit/rules.d)
mkdir -p "$dir"
out="$dir/osiris-identity.rules"
watch=(/etc/passwd /etc/shadow /etc/group /etc/gshadow)
for f in "${watch[@]}"; do
  grep -Eq -- "-w $f( |$)" "$out" 2>/dev/null || printf -- '-w %s -p wa -k %s\n' "$f" identity >>"$out"
done
if [ -z "$osiris_root" ] && command -v augenrules >/dev/null 2>&1; then
  augenrules --load >&2
fi
osiris_done true "audit watches written to /etc/audit/rules.d/osiris-identity.rules"
