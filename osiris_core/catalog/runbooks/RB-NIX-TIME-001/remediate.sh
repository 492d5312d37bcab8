#!/usr/bin/env bash
# RB-NIX-TIME-001 remediate: turn NTP on and restart the time-sync unit.
timedatectl set-ntp true >&2 || true
systemctl restart "$OSIRIS_P_SERVICE" >&2
osiris_done true "restarted $OSIRIS_P_SERVICE"
