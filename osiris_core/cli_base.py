"""What the three command lines share: the error writer and the click group class.

``osiris``, ``osiris-agent`` and ``osiris-server`` all report a failure the same way: one line
``<prog>: error: <message>`` on stderr, secrets redacted and control characters escaped, and
an exit code from ``ExitCode`` (DESIGN §4.2). ``OsirisGroup`` is the root group of each: it
turns an ``OsirisError`` that reaches it into that line and the error's ``exit_code``, an
``OSError`` (and the library errors a CLI lists as ``input_errors``, e.g. a corrupt database)
into exit 2, and anything else (a bug) into one line and exit 5; the traceback is
printed only with ``--debug`` or ``OSIRIS_DEBUG=1``.

Why click here although ``osiris_core`` is the bottom layer: the layering rule (DESIGN §1,
tests/test_layering.py) keeps the core free of the *other Osiris packages* and of Textual;
click is a declared dependency of the distribution every CLI ships in, this module is imported
only by the three ``cli`` modules (never by the verifier, the protocol or the crypto), and a
shared base class is the only way the three CLIs cannot drift apart again.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Any, NoReturn

import click

from .errors import ExitCode, OsirisError

DEBUG_ENV = "OSIRIS_DEBUG"

# Bearer tokens of every kind Osiris issues (operator, appliance, partner key, claim code):
# a prefix and the random part. The whole token goes, not only its tail.
_TOKEN = re.compile(r"\b(osk|oak|opk|ocl)_[A-Za-z0-9_\-]+")
# ``password=…`` and JSON's ``"password": "…"`` (also secret, token, api_key, authorization):
# the value goes. A bare ``token: …`` is prose ("no token: pass --token"), not a secret.
_SECRET_KEY = r"(?:password|passwd|passphrase|secret|token|api[_-]?key|authorization)"
_ASSIGNED = re.compile(
    rf"""(?ix)
    (?P<key>\b{_SECRET_KEY}\s*=\s*|(?P<q>["']){_SECRET_KEY}(?P=q)\s*:\s*)
    (?P<value>"[^"]*"|'[^']*'|Bearer\s+\S+|[^\s,;&]+)
    """
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/@\s:]+):([^/@\s]*)@")
# The same set as ``osiris_tui.fmt.safe``: C0 (but tab and newline, handled first), DEL, C1 and
# the Unicode format characters that reorder or hide text.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def redact(text: str) -> str:
    """``text`` with every Osiris token, assigned secret and URL password replaced by ``***``."""
    text = _TOKEN.sub(lambda m: f"{m.group(1)}_***", text)
    text = _ASSIGNED.sub(lambda m: f"{m.group('key')}***", text)
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)


def escape_controls(text: str) -> str:
    """Control characters as visible ``\\xNN`` escapes, exactly as ``osiris_tui.fmt.safe``: no
    terminal control sequence from a remote or on-disk message reaches the terminal."""
    text = text.replace("\n", "\u23ce").replace("\t", " ")
    return _CONTROL.sub(_visible, text)


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def one_line(message: object) -> str:
    """One printable, redacted line: controls escaped (a newline shows as ⏎), runs of spaces
    collapsed."""
    return " ".join(escape_controls(redact(str(message))).split()) or "failed"


def error_line(prog: str, message: object) -> str:
    return f"{prog}: error: {one_line(message)}"


def debug_enabled() -> bool:
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().meta.get("osiris.debug"):
        return True
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def prog_name(default: str = "osiris") -> str:
    """The program name of the running CLI: its root ``OsirisGroup``'s ``prog``."""
    ctx = click.get_current_context(silent=True)
    cmd = ctx.find_root().command if ctx is not None else None
    return getattr(cmd, "prog", None) or default


def write_error(message: object, prog: str | None = None) -> None:
    """The one error writer: ``<prog>: error: <one line>`` on stderr."""
    click.echo(error_line(prog or prog_name(), message), err=True)


def fail(message: object, code: ExitCode | int, prog: str | None = None) -> NoReturn:
    """Write the error line and exit with ``code`` (an ``ExitCode``)."""
    write_error(message, prog)
    sys.exit(int(code))


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["osiris.debug"] = True
    return value


class OsirisGroup(click.Group):
    """The root group of every Osiris CLI: errors become one line and an ``ExitCode``.

    ``prog`` names the program in the error line (``osiris``, ``osiris-agent``,
    ``osiris-server``); a ``--debug`` flag is added that prints the traceback of an unexpected
    error (also ``OSIRIS_DEBUG=1``)."""

    def __init__(
        self,
        *args: Any,
        prog: str = "osiris",
        input_errors: tuple[type[Exception], ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.prog = prog
        # Errors of libraries that mean "this file or data dir is unusable" (a corrupt SQLite
        # database, a TOML file that does not parse): exit 2 with their message, not a bug.
        self.input_errors = input_errors
        self.params.append(
            click.Option(
                ["--debug"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_set_debug,
                help=f"Print the traceback of an unexpected error (or {DEBUG_ENV}=1).",
            )
        )

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise
        except OsirisError as e:
            fail(e, e.exit_code, self.prog)
        except self.input_errors as e:
            fail(f"unusable data: {e} ({type(e).__name__})", ExitCode.USAGE, self.prog)
        except BrokenPipeError:
            sys.exit(int(ExitCode.OK))  # `osiris site list | head`: the reader is gone
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            fail(f"{where}{e.strerror or e}", ExitCode.USAGE, self.prog)
        except Exception as e:  # noqa: BLE001 - the one place a bug becomes one line, not a traceback
            if debug_enabled():
                traceback.print_exc(file=sys.stderr)
            fail(
                f"internal error ({type(e).__name__}: {e}); run with --debug or "
                f"{DEBUG_ENV}=1 for the traceback",
                ExitCode.INTERNAL,
                self.prog,
            )


__all__ = [
    "ExitCode",
    "OsirisGroup",
    "debug_enabled",
    "error_line",
    "escape_controls",
    "fail",
    "one_line",
    "redact",
    "write_error",
]
