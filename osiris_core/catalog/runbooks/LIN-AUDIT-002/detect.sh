#!/usr/bin/env bash
# LIN-AUDIT-002 detect: are the authlog audit watches in the rule files auditd loads at boot, and (where the
# kernel audit is reachable) in the loaded rules? No kernel audit (a container, audit=0) → error.
osiris_audit_judge authlog "$OSIRIS_P_AUTH_LOG"
