#!/usr/bin/env bash
# LIN-SVC-003 detect: is the system logger running (the installed syslog daemon, or else journald
# with persistent storage — Debian 12's default logging)?
osiris_logger_judge "$OSIRIS_P_SERVICE"
