#!/usr/bin/env bash
# LIN-SSH-003 remediate: set MaxAuthTries to the policy limit, then reload sshd.
osiris_sshd_set MaxAuthTries "$OSIRIS_P_MAX_AUTH_TRIES"
osiris_done true "MaxAuthTries set to $OSIRIS_P_MAX_AUTH_TRIES"
