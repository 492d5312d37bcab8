#!/usr/bin/env bash
# LIN-AUDIT-002 remediate: add the missing watches to an Osiris rules file, regenerate and load the rules;
# fails (saying why) where the kernel audit subsystem cannot take them.
osiris_audit_write "$(osiris_path /etc/audit/rules.d)/osiris-authlog.rules" authlog "$OSIRIS_P_AUTH_LOG"
osiris_done true "audit watches written to /etc/audit/rules.d/osiris-authlog.rules and loaded"
