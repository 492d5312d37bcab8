#!/usr/bin/env bash
# LIN-SVC-002 remediate: enable and start the audit daemon — unless the kernel audit subsystem
# cannot be reached (a container: audit is not namespaced; audit=0): then auditd can only
# crash-loop, so nothing is touched and the failure says why.
kernel=$(osiris_audit_kernel)
case "$kernel" in
  unavailable*) osiris_fail "$OSIRIS_P_SERVICE cannot run here: the kernel audit subsystem is ${kernel} (a container, or audit=0 on the kernel command line); the unit was not touched" ;;
esac
systemctl enable --now "$OSIRIS_P_SERVICE" >&2 || osiris_fail "systemctl enable --now $OSIRIS_P_SERVICE failed: $(systemctl show -p Result --value "$OSIRIS_P_SERVICE" 2>/dev/null)"
osiris_done true "enabled and started $OSIRIS_P_SERVICE"
