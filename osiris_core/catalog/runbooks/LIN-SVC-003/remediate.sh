#!/usr/bin/env bash
# LIN-SVC-003 remediate: enable and start the service.
systemctl enable --now "$OSIRIS_P_SERVICE" >&2
osiris_done true "enabled and started $OSIRIS_P_SERVICE"
