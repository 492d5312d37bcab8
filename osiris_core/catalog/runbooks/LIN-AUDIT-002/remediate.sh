#!/usr/bin/env bash
# LIN-AUDIT-002 remediate: add the missing watches to an Osiris rules file and load it.
dir=$(osiris_path /etc/audit/rules.d)
mkdir -p "$dir"
out="$dir/osiris-authlog.rules"
watch=("$OSIRIS_P_AUTH_LOG")
for f in "${watch[@]}"; do
  grep -Eq -- "-w $f( |$)" "$out" 2>/dev/null || printf -- '-w %s -p wa -k %s\n' "$f" authlog >>"$out"
done
if [ -z "$osiris_root" ] && command -v augenrules >/dev/null 2>&1; then
  augenrules --load >&2
fi
osiris_done true "audit watches written to /etc/audit/rules.d/osiris-authlog.rules"
