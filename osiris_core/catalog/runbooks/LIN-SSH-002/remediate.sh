#!/usr/bin/env bash
# LIN-SSH-002 remediate: set PasswordAuthentication in sshd_config (and any drop-in that sets it), then reload sshd.
osiris_sshd_set PasswordAuthentication "no"
osiris_done true "PasswordAuthentication set to no"
