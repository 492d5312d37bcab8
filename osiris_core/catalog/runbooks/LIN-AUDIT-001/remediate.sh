#!/usr/bin/env bash
# LIN-AUDIT-001 remediate: add the missing watches to an Osiris rules file, regenerate and load the rules;
# fails (saying why) where the kernel audit subsystem cannot take them.
osiris_audit_write "$(osiris_path /etc/audit/rules.d)/osiris-identity.rules" identity /etc/passwd /etc/shadow /etc/group /etc/gshadow
osiris_done true "audit watches written to /etc/audit/rules.d/osiris-identity.rules and loaded"
