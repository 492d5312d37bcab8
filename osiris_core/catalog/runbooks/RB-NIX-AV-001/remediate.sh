#!/usr/bin/env bash
# RB-NIX-AV-001 remediate: restart the AV service.
systemctl restart "$OSIRIS_P_SERVICE" >&2
osiris_done true "restarted $OSIRIS_P_SERVICE"
