"""What the console's forms check before anything is sent: the same rules as the CLI's options.

Why a headless module: `osiris site add --interval 5` and the console's Add-site form must refuse
the same input with the same words, and a rule is tested without a terminal. Every function
takes the form's raw text values and answers the request body, or raises ``UsageError`` with
the sentence the form shows. The server still judges everything again (it is the authority);
these checks only keep an obviously wrong request, or a mistyped password, from being sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osiris_core import ids

from .client import UsageError

# `osiris site add --interval` is click.IntRange(10, 3600); the server's bound is the same.
INTERVAL_MIN, INTERVAL_MAX = 10, 3600
# `osiris cred add --kind` choices, and which secret each kind takes.
CRED_KINDS = ("winrm", "ssh_password", "ssh_key", "local")
SECRET_OF = {"winrm": "password", "ssh_password": "password", "ssh_key": "private_key"}
DEFAULT_PORT = {"winrm": 5986, "ssh_password": 22, "ssh_key": 22}
SSH_SUDO_KINDS = ("ssh_password", "ssh_key")  # the kinds that may become root through sudo
MAX_KEY_BYTES = 16384  # the server's limit on private_key


def _text(values: dict[str, Any], name: str) -> str:
    v = values.get(name)
    return v.strip() if isinstance(v, str) else ""


def _int_in(raw: str, what: str, lo: int, hi: int) -> int:
    try:
        n = int(raw, 10)
    except ValueError:
        raise UsageError(f"{what} must be a whole number, not {raw!r}") from None
    if not lo <= n <= hi:
        raise UsageError(f"{what} must be between {lo} and {hi}, not {n}")
    return n


def _id(kind: ids.IdKind, raw: str, what: str) -> str:
    if not kind.match(raw):
        raise UsageError(f"{what} {raw!r} is not a valid {kind.name} (e.g. {kind.example})")
    return raw


# ---------------------------------------------------------------- sites


def site_add(values: dict[str, Any]) -> dict[str, Any]:
    """``osiris site add NAME [--id] [--partner] [--interval]`` → keyword arguments of
    ``Client.create_site``."""
    name = _text(values, "name")
    if not name:
        raise UsageError("a site needs a name")
    out: dict[str, Any] = {"name": name, "site_id": None, "partner_id": None,
                           "checkin_interval_s": None}  # fmt: skip
    if raw := _text(values, "site_id"):
        out["site_id"] = _id(ids.SITE_ID, raw, "site id")
    if raw := _text(values, "partner_id"):
        out["partner_id"] = _id(ids.PARTNER_ID, raw, "partner id")
    if raw := _text(values, "interval"):
        out["checkin_interval_s"] = _int_in(
            raw, "check-in interval (seconds)", INTERVAL_MIN, INTERVAL_MAX
        )
    return out


def site_edit(current: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Rename (``osiris site rename``) and/or change the check-in interval: only what differs
    from ``current`` (a ``Site``); refuses an edit that changes nothing."""
    changes: dict[str, Any] = {}
    name = _text(values, "name")
    if not name:
        raise UsageError("a site needs a name")
    if name != current.name:
        changes["name"] = name
    if raw := _text(values, "interval"):
        n = _int_in(raw, "check-in interval (seconds)", INTERVAL_MIN, INTERVAL_MAX)
        if n != current.checkin_interval_s:
            changes["checkin_interval_s"] = n
    if not changes:
        raise UsageError("nothing changed: edit the name or the interval")
    return changes


# ---------------------------------------------------------------- credentials


def read_key(values: dict[str, Any], reader: Callable[[Path], str]) -> str:
    """The ssh private key: pasted text wins, else the file named by ``key_path``."""
    pasted = values.get("private_key") or ""
    if isinstance(pasted, str) and pasted.strip():
        key = pasted.strip() + "\n"
    else:
        path = _text(values, "key_path")
        if not path:
            raise UsageError("an ssh_key credential needs a private key: a file path or pasted")
        try:
            key = reader(Path(path).expanduser())
        except OSError as e:
            raise UsageError(f"cannot read the key file {path}: {e.strerror or e}") from None
    if "PRIVATE KEY" not in key:
        raise UsageError("that is not a private key (no 'PRIVATE KEY' block)")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise UsageError(f"the private key is larger than {MAX_KEY_BYTES} bytes")
    return key


def secret(kind: str, values: dict[str, Any], reader: Callable[[Path], str]) -> dict[str, str]:
    """The secret field a kind takes; a password must be typed twice, the same both times (the
    CLI's hidden prompt asks twice too)."""
    want = SECRET_OF.get(kind)
    if want is None:
        return {}
    if want == "private_key":
        return {"private_key": read_key(values, reader)}
    pw = values.get("password") or ""
    if not pw:
        raise UsageError(f"a {kind} credential needs a password")
    if pw != (values.get("password2") or ""):
        raise UsageError("the two passwords differ: type the same password twice")
    return {"password": pw}


def credential_add(
    values: dict[str, Any], reader: Callable[[Path], str] = Path.read_text
) -> dict[str, Any]:
    """``osiris cred add`` → the ``POST …/credentials`` body; ``reader`` reads a key file."""
    kind = _text(values, "kind")
    if kind not in CRED_KINDS:
        raise UsageError(f"kind must be one of {', '.join(CRED_KINDS)}")
    host = _text(values, "host_id")
    if not host:
        raise UsageError("a credential needs the host id the agent will know it by")
    address = _text(values, "address")
    if not address:
        raise UsageError("a credential needs the host's name or IP address")
    body: dict[str, Any] = {
        "host_id": _id(ids.HOST_ID, host, "host id"),
        "kind": kind,
        "address": address,
    }
    if raw := _text(values, "port"):
        body["port"] = _int_in(raw, "port", 1, 65535)
    if user := _text(values, "username"):
        body["username"] = user
    if fps := _text(values, "fingerprints").replace(",", " ").split():
        body["host_key_fingerprints"] = fps
    if kind == "winrm":
        body["use_tls"] = bool(values.get("use_tls", True))
        body["verify_tls"] = bool(values.get("verify_tls", True))
    if values.get("lab"):
        body["lab"] = True
    body.update(secret(kind, values, reader))
    become = values.get("become_password") or ""
    if kind in SSH_SUDO_KINDS and values.get("sudo"):
        body["sudo"] = True
        if become:
            body["become_password"] = become
    elif become:
        raise UsageError("a sudo password is used only by an ssh credential with sudo on")
    return body


def credential_rotate(
    kind: str, values: dict[str, Any], reader: Callable[[Path], str] = Path.read_text
) -> dict[str, Any]:
    """``osiris cred rotate`` → the ``PATCH`` body: the new secret of the credential's kind."""
    if kind == "local":
        raise UsageError("a local credential has no secret to rotate")
    body = secret(kind, values, reader)
    if values.get("become_password") and kind in SSH_SUDO_KINDS:
        body["become_password"] = values["become_password"]  # the server refuses it without sudo
    return body


def shown(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the activity log writes it: secrets never."""
    secret_keys = ("password", "private_key", "become_password")
    return {k: ("********" if k in secret_keys else v) for k, v in body.items()}


# ---------------------------------------------------------------- runbook parameters


def param_value(name: str, spec: dict[str, Any], raw: str, param: Any | None) -> Any:
    """The text typed for one parameter → the value to send: converted as ``osiris runbook
    set`` converts it (``convert_param``), then judged by the catalogue's own validator
    (``Param.check``: type, form and semantic bound) when the local catalogue has the runbook.
    The refusal names the bound (``spec["bound_text"]``)."""
    from osiris_core.errors import SchemaError

    from .cli.runbook import convert_param

    value = convert_param(name, spec, raw)
    try:
        if param is not None:
            param.check(value)
        else:  # no local catalogue: the server's schema still gives min/max and the pattern
            _check_form(name, spec, value)
    except SchemaError as e:
        bound = spec.get("bound_text")
        raise UsageError(f"{e}" + (f" (allowed: {bound})" if bound else "")) from None
    return value


def _check_form(name: str, spec: dict[str, Any], value: Any) -> None:
    import re

    from osiris_core.errors import SchemaError

    lo, hi = spec.get("min"), spec.get("max")
    if isinstance(value, int) and not isinstance(value, bool):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise SchemaError(f"param {name!r}: {value} is outside {lo}..{hi}")
    pattern = spec.get("pattern")
    if isinstance(value, str) and pattern and re.fullmatch(pattern, value) is None:
        raise SchemaError(f"param {name!r}: value does not match the pattern {pattern!r}")


def bound_text(spec: dict[str, Any]) -> str:
    """One line a technician reads: the bound, or the form when there is none."""
    if spec.get("bound_text"):
        return str(spec["bound_text"])
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None or hi is not None:
        return f"{lo}..{hi}"
    return f"matches {spec['pattern']}" if spec.get("pattern") else spec.get("type", "")


def may_set(spec: dict[str, Any], role: str | None) -> bool:
    """Whether a token of ``role`` may set the parameter (the server's rule: a trust-redirecting
    one is admin-only; every other one any writer — operator or admin). Unknown role: let the
    server decide."""
    who = spec.get("set_by", "operator")
    if role is None:
        return True
    return role == "admin" or (who == "operator" and role == "operator")


def shown_value(value: Any) -> str:
    """A parameter value as it is typed: ``true``/``false`` for a bool, the text otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class ParamChange:
    """One parameter the form changes: ``new`` is ``None`` to clear the value set at the scope
    (it inherits again)."""

    name: str
    old: Any
    new: Any


def param_changes(
    view: dict[str, Any], scope: str, values: dict[str, Any], runbook: Any | None, role: str | None
) -> list[ParamChange]:
    """The form's typed values → the changes to send at ``scope`` (site or appliance): a value
    typed differently from the effective one is converted and judged (``param_value``); an
    emptied field clears the value set at this scope. Nothing changed is refused."""
    schema = view.get("schema") or {}
    own = view.get("appliance" if scope == "appliance" else "site") or {}
    effective = view.get("effective") or {}
    params = getattr(runbook, "params", {}) or {}
    out: list[ParamChange] = []
    for name, spec in sorted(schema.items()):
        raw = values.get(f"p_{name}")
        raw = raw.strip() if isinstance(raw, str) else ""
        old = effective.get(name)
        if raw == "":
            if name in own:
                out.append(ParamChange(name, old, None))
            continue
        if raw == shown_value(old):
            continue
        new = param_value(name, spec, raw, params.get(name))
        if new == old and name in own:
            continue
        if not may_set(spec, role):
            raise UsageError(f"{name} is trust-redirecting: only an admin may set it")
        out.append(ParamChange(name, old, new))
    if not out:
        raise UsageError("nothing changed: type a new value (or empty a field to clear it)")
    return out


def source_of(view: dict[str, Any], name: str) -> str:
    """Where the effective value comes from: appliance, site or default (``param_rows``)."""
    if name in (view.get("appliance") or {}):
        return "appliance"
    return "site" if name in (view.get("site") or {}) else "default"
