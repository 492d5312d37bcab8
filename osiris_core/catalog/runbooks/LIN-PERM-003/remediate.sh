#!/usr/bin/env bash
# LIN-PERM-003 remediate: remove the other-write bit from world-writable regular files under /etc.
etc=$(osiris_path /etc)
n=$(find "$etc" -xdev -type f -perm -0002 2>/dev/null | wc -l)
find "$etc" -xdev -type f -perm -0002 -exec chmod o-w {} +
osiris_done "$([ "$n" -gt 0 ] && echo true || echo false)" "removed o+w from $n file(s)"
