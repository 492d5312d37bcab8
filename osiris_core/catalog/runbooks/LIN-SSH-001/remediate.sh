#!/usr/bin/env bash
# LIN-SSH-001 remediate: set PermitRootLogin in sshd_config (and any drop-in that sets it), then reload sshd.
osiris_sshd_set PermitRootLogin "$OSIRIS_P_VALUE"
osiris_done true "PermitRootLogin set to $OSIRIS_P_VALUE"
