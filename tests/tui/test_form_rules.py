"""The console forms' rules (``osiris_tui.form_rules``) refuse what the CLI refuses, with the
sentence the form shows; no terminal needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from osiris_core.catalog import load_catalog
from osiris_tui.client import Site, UsageError
from osiris_tui.form_rules import (
    credential_add,
    credential_rotate,
    param_changes,
    param_value,
    site_add,
    site_edit,
)

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def refused(fn, *args, match: str) -> None:  # noqa: ANN001
    with pytest.raises(UsageError, match=match):
        fn(*args)


def test_site_rules_are_the_cli_options() -> None:
    assert site_add({"name": " Oak Dental ", "interval": "60"}) == {
        "name": "Oak Dental", "site_id": None, "partner_id": None, "checkin_interval_s": 60,
    }  # fmt: skip
    refused(site_add, {"name": ""}, match="needs a name")
    refused(site_add, {"name": "A", "interval": "9"}, match="between 10 and 3600")
    refused(site_add, {"name": "A", "interval": "ten"}, match="whole number")
    refused(site_add, {"name": "A", "site_id": "has space"}, match="not a valid site_id")
    site = Site(id="oak", name="Oak", checkin_interval_s=60)
    assert site_edit(site, {"name": "Oak North", "interval": "60"}) == {"name": "Oak North"}
    refused(site_edit, site, {"name": "Oak", "interval": "60"}, match="nothing changed")


def test_credential_rules(tmp_path: Path) -> None:
    base = {"kind": "winrm", "host_id": "dc01", "address": "10.0.0.5", "username": "svc"}
    refused(credential_add, {**base, "password": "a", "password2": "b"}, match="differ")
    refused(credential_add, {**base, "password": ""}, match="needs a password")
    refused(credential_add, {**base, "port": "70000", "password": "a", "password2": "a"},
            match="between 1 and 65535")  # fmt: skip
    body = credential_add({**base, "password": "pw", "password2": "pw", "use_tls": True,
                           "verify_tls": False})  # fmt: skip
    assert body["password"] == "pw" and body["verify_tls"] is False and "port" not in body
    ssh = {"kind": "ssh_key", "host_id": "lx01", "address": "10.0.0.6", "port": "2222"}
    refused(credential_add, ssh, match="needs a private key")
    refused(credential_add, {**ssh, "key_path": str(tmp_path / "none")}, match="cannot read")
    (tmp_path / "k").write_text("not a key")
    refused(credential_add, {**ssh, "key_path": str(tmp_path / "k")}, match="not a private key")
    (tmp_path / "k").write_text(KEY)
    body = credential_add({**ssh, "key_path": str(tmp_path / "k"), "password": "ignored"})
    assert (body["private_key"], body["port"]) == (KEY, 2222) and "password" not in body
    assert credential_add({**ssh, "private_key": KEY.strip()})["private_key"] == KEY
    refused(credential_rotate, "local", {}, match="no secret")
    assert credential_rotate("ssh_password", {"password": "n", "password2": "n"}) == {
        "password": "n"}  # fmt: skip


def test_param_value_names_the_bound() -> None:
    rb = load_catalog().runbooks["RB-WIN-PATCH-001"]
    spec = {"type": "int", "min": 1, "max": 60, "bound_text": rb.params[
        "critical_overdue_days"].describe_bound()}  # fmt: skip
    assert (
        param_value("critical_overdue_days", spec, "15", rb.params["critical_overdue_days"]) == 15
    )
    refused(param_value, "critical_overdue_days", spec, "61", rb.params["critical_overdue_days"],
            match=r"above the maximum 60 \(allowed: 1..60")  # fmt: skip
    refused(param_value, "critical_overdue_days", spec, "x", None, match="must be an integer")
    refused(param_value, "critical_overdue_days", spec, "0", None, match="outside 1..60")
    view = {"schema": {"critical_overdue_days": spec}, "site": {"critical_overdue_days": 20},
            "effective": {"critical_overdue_days": 20}}  # fmt: skip
    refused(param_changes, view, "site", {"p_critical_overdue_days": "20"}, rb, None,
            match="nothing changed")  # fmt: skip
    [clear] = param_changes(view, "site", {"p_critical_overdue_days": ""}, rb, None)
    assert (clear.old, clear.new) == (20, None)


def test_credential_sudo_and_become_password_rules() -> None:
    """The console's sudo switch and sudo password (issue 15 item 2): sent only for SSH with
    sudo on; a sudo password anywhere else is refused, not silently dropped; masked in the log."""
    from osiris_tui.form_rules import shown

    base = {"kind": "ssh_key", "host_id": "lin1", "address": "10.0.0.9", "username": "osiris",
            "private_key": KEY}  # fmt: skip
    body = credential_add({**base, "sudo": True, "become_password": "Sudo-1"})
    assert body["sudo"] is True and body["become_password"] == "Sudo-1"
    assert shown(body)["become_password"] == "********"
    assert "sudo" not in credential_add(base) and "become_password" not in credential_add(base)
    refused(credential_add, {**base, "become_password": "x"}, match="with sudo on")
    win = {"kind": "winrm", "host_id": "dc1", "address": "10.0.0.5", "username": "a",
           "password": "p", "password2": "p"}  # fmt: skip
    assert "sudo" not in credential_add({**win, "sudo": True})  # the field is SSH-only
    refused(credential_add, {**win, "become_password": "x"}, match="with sudo on")
    rot = credential_rotate("ssh_key", {"private_key": KEY, "become_password": "Sudo-2"})
    assert rot == {"private_key": KEY, "become_password": "Sudo-2"}
