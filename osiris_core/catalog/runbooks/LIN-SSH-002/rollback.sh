#!/usr/bin/env bash
# LIN-SSH-002 rollback: restore the sshd configuration saved by remediate, then reload sshd.
if osiris_sshd_restore; then
  osiris_done true "sshd configuration restored"
else
  osiris_done false "no saved configuration to restore"
fi
