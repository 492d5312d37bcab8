#!/usr/bin/env bash
# LIN-FW-001 remediate: turn the host firewall on (ufw: default deny inbound, keep SSH open).
if [ "$OSIRIS_P_FIREWALL_SERVICE" = ufw ] && [ -z "$osiris_root" ] && command -v ufw >/dev/null 2>&1; then
  ufw default deny incoming >&2
  ufw allow 22/tcp >&2
  ufw --force enable >&2
fi
systemctl enable --now "$OSIRIS_P_FIREWALL_SERVICE" >&2
osiris_done true "enabled $OSIRIS_P_FIREWALL_SERVICE"
