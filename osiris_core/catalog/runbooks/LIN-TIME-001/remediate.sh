#!/usr/bin/env bash
# LIN-TIME-001 remediate: enable and start the time daemon, and give it up to ~30 s to
# synchronise. Never sets or steps the clock (no date, no chronyc makestep, no settime): the
# daemon slews it from its sources, and a clock it cannot bring within the bound escalates.
systemctl enable --now "$OSIRIS_P_SERVICE" >&2
if [ "$OSIRIS_P_SERVICE" = chrony ]; then
  chronyc waitsync 15 0 0 2 >&2 || true
else
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    [ "$(timedatectl show -p NTPSynchronized --value 2>/dev/null || true)" = yes ] && break
    sleep 2
  done
fi
osiris_done true "enabled and started $OSIRIS_P_SERVICE"
