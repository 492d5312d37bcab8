#!/usr/bin/env bash
# LIN-AV-001 remediate: enable and start the updater, then the daemon, whichever is not active.
# Never touches /var/lib/clamav: stale or missing signatures are freshclam's to fetch (started
# here), never deleted or faked; clamd refuses to start without a database it can verify, and
# the verify then says so.
ran=()
for unit in "$OSIRIS_P_UPDATER_SERVICE" "$OSIRIS_P_DAEMON_SERVICE"; do
  if ! osiris_active "$unit"; then
    systemctl enable --now "$unit" >&2
    ran+=("$unit")
  fi
done
[ "${#ran[@]}" -gt 0 ] || osiris_fail "both units were already active: nothing this runbook may change"
osiris_done true "enabled and started ${ran[*]}"
