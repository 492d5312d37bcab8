#!/usr/bin/env bash
# LIN-SVC-001 remediate: enable and start the SSH daemon under whichever unit name this distribution uses.
if systemctl enable --now ssh >&2 2>/dev/null; then
  osiris_done true "enabled and started ssh"
else
  systemctl enable --now sshd >&2
  osiris_done true "enabled and started sshd"
fi
