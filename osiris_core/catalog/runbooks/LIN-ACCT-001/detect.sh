#!/usr/bin/env bash
# LIN-ACCT-001 detect: list accounts other than root with UID 0.
passwd=$(osiris_path /etc/passwd)
[ -f "$passwd" ] || osiris_fail "/etc/passwd not found"
mapfile -t extra < <(awk -F: '$3 == 0 && $1 != "root" { print $1 }' "$passwd")
if [ "${#extra[@]}" -eq 0 ]; then status=compliant; else status=drift; fi
osiris_emit "$status" "$(osiris_obj uid0_accounts "$(osiris_arr "${extra[@]}")")" "$(osiris_obj uid0_accounts '[]')"
