#!/usr/bin/env bash
# LIN-AUDIT-001 verify: are the identity audit watches in the rule files auditd loads at boot, and (where the
# kernel audit is reachable) in the loaded rules? No kernel audit (a container, audit=0) → error.
osiris_audit_judge identity /etc/passwd /etc/shadow /etc/group /etc/gshadow
