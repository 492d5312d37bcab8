#!/usr/bin/env bash
# LIN-SVC-003 remediate: start the installed syslog daemon; on a journald-only host (no syslog
# daemon installed — nothing is installed here) keep journald running with persistent storage.
if osiris_installed "$OSIRIS_P_SERVICE"; then
  systemctl enable --now "$OSIRIS_P_SERVICE" >&2 || osiris_fail "systemctl enable --now $OSIRIS_P_SERVICE failed"
  osiris_done true "enabled and started $OSIRIS_P_SERVICE"
  exit 0
fi
done_what="journald running"
case "$(osiris_journal_storage)" in
  persistent) ;;
  auto) ;;
  *)
    dir=$(osiris_path /etc/systemd/journald.conf.d)
    mkdir -p "$dir"
    printf '# Osiris LIN-SVC-003: keep the system log across reboots\n[Journal]\nStorage=persistent\n' >"$dir/90-osiris-persistent.conf"
    done_what="$done_what; Storage=persistent in /etc/systemd/journald.conf.d/90-osiris-persistent.conf"
    ;;
esac
mkdir -p "$(osiris_path /var/log/journal)"
if [ -z "$osiris_root" ]; then
  systemd-tmpfiles --create --prefix /var/log/journal >&2 || true
  systemctl restart systemd-journald >&2 || osiris_fail "systemctl restart systemd-journald failed"
  journalctl --flush >&2 || true
fi
osiris_done true "$done_what; /var/log/journal present (no syslog daemon installed: $OSIRIS_P_SERVICE)"
