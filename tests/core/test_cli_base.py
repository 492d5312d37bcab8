"""The one error writer of the three CLIs (osiris_core.cli_base): one line, secrets redacted,
control characters escaped exactly as the console's ``fmt.safe`` does."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from osiris_core.cli_base import OsirisGroup, error_line, escape_controls, one_line, redact
from osiris_core.errors import ExitCode, InputError
from osiris_tui.fmt import safe

TOKENS = [
    "osk_" + "a1B2" * 10,
    "oak_" + "Zz9-_" * 8,
    "opk_0123456789abcdefABCDEF",
    "ocl_ptDk8F4t_O_8NeBIpHlYa3v_RU8",
]


@pytest.mark.parametrize("tok", TOKENS)
def test_every_token_kind_is_redacted_whole(tok: str) -> None:
    for text in (tok, f"token {tok} refused", f"Bearer {tok}", f"x={tok};", f"({tok})"):
        out = one_line(text)
        assert tok not in out and tok[4:] not in out
        assert tok[:4] + "***" in out


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("login failed: password=hunter2 for admin", "hunter2"),
        ("PASSWORD = s3cr3t!", "s3cr3t!"),
        ('{"password": "pa ss w0rd", "user": "bob"}', "pa ss w0rd"),
        ("{'secret': 'abc def'}", "abc def"),
        ("GET /x?api_key=AKIA123&y=1", "AKIA123"),
        ("https://admin:Tr0ub4dor@cc.example/api", "Tr0ub4dor"),
        ("authorization=Bearer xyz.abc", "xyz.abc"),
    ],
)
def test_passwords_and_assigned_secrets_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and "***" in out


def test_prose_about_tokens_and_passwords_is_kept() -> None:
    for text in (
        "no token: pass --token, set OSIRIS_TOKEN or write a profile",
        "password needed: use --password-stdin (no terminal to prompt on)",
        "a client token needs --site; other roles take none",
    ):
        assert redact(text) == text


def test_controls_are_escaped_like_fmt_safe() -> None:
    nasty = "host\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m\u202eevil\r\x7f\nnext\tcol"
    assert escape_controls(nasty) == safe(nasty)
    out = one_line(nasty)
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out and "\n" not in out
    assert "\\x1b" in out and "\\x9b" in out and "\\u202e" in out


def test_error_line_is_one_line_with_the_prefix() -> None:
    line = error_line("osiris-agent", "first\n\n  second   third")
    assert line == "osiris-agent: error: first⏎⏎ second third"
    assert error_line("osiris", "") == "osiris: error: failed"


@click.group(cls=OsirisGroup, prog="demo-prog")
def cli() -> None:
    """A test CLI on the shared group."""


@cli.command()
def input_error() -> None:
    raise InputError("bad thing with osk_" + "q" * 30)


@cli.command()
def bug() -> None:
    raise KeyError("unexpected")


@cli.command()
def missing() -> None:
    open("/nonexistent/osiris/file")  # noqa: SIM115


def test_the_group_maps_errors_to_one_line_and_exit_codes() -> None:
    from click.testing import CliRunner

    r = CliRunner().invoke(cli, ["input-error"])
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == "demo-prog: error: bad thing with osk_***\n"
    r = CliRunner().invoke(cli, ["bug"])
    assert r.exit_code == ExitCode.INTERNAL and "Traceback" not in r.stderr
    assert r.stderr.startswith("demo-prog: error: internal error (KeyError: 'unexpected')")
    r = CliRunner().invoke(cli, ["--debug", "bug"])
    assert r.exit_code == ExitCode.INTERNAL and "Traceback" in r.stderr
    r = CliRunner().invoke(cli, ["missing"])
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == "demo-prog: error: /nonexistent/osiris/file: No such file or directory\n"


def test_the_core_imports_click_only_through_cli_base() -> None:
    """The verifier's import graph stays free of click (only the CLIs' base class uses it)."""
    code = "import osiris_core.verify, sys; print('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
