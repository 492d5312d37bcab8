#!/usr/bin/env bash
# LIN-PATCH-001 remediate: install pending security updates with the distribution's tool.
if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  if command -v unattended-upgrade >/dev/null 2>&1; then
    unattended-upgrade >&2
  else
    apt-get -y -o Dpkg::Options::=--force-confold upgrade >&2
  fi
elif command -v dnf >/dev/null 2>&1; then
  dnf -y update --security >&2
else
  yum -y update --security >&2
fi
osiris_done true "security updates installed"
