"""Every command the README, iso/README.md (the technician's guide) and ``docs/*.md`` show in a
fenced code block is one the CLIs have.

For each ``osiris``, ``osiris-agent`` and ``osiris-server`` command line (a ``\\`` continuation
joined, ``&&``, ``||``, ``;`` and ``|`` separating commands, ``$ ``, ``sudo`` and ``VAR=value``
prefixes skipped): the subcommand path is the words up to the first option or argument, walked
through the click groups of the installed entry point; every word that a group is given must be
one of its subcommands; ``<path> --help`` is run and must exit 0; and every ``--option`` the
example uses must be a parameter of the command it is given to (a group's options before its
subcommand, the command's own after). For ``make …`` lines the targets must exist in the
Makefile. So a wrong example (``osiris site add --name "Clinic A"``, the name being positional)
fails CI.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "iso" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("osiris", "osiris-agent", "osiris-server")
SEPARATORS = {"&&", "||", ";", "|"}
_FENCE = re.compile(r"^\s*(```|~~~)")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Example:
    where: str  # "docs/console.md:54"
    program: str  # "osiris", "osiris-agent", "osiris-server" or "make"
    words: tuple[str, ...]  # the tokens after the program, brackets of a synopsis stripped

    def __str__(self) -> str:
        return f"{self.where}: {self.program} {' '.join(self.words)}"


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(first line number, text) of every line inside a fenced block, continuations joined."""
    out: list[tuple[int, str]] = []
    inside = False
    pending: tuple[int, str] | None = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            continue
        start, text = pending if pending else (n, "")
        text += line
        if line.rstrip().endswith("\\"):
            pending = (start, text.rstrip()[:-1] + " ")
            continue
        pending = None
        out.append((start, text))
    return out


def _segments(tokens: list[str]) -> list[list[str]]:
    """Split a token list into commands at separators outside a synopsis's ``[…]``."""
    segments: list[list[str]] = [[]]
    depth = 0
    for tok in tokens:
        if depth == 0 and tok in SEPARATORS:
            segments.append([])
            continue
        depth += tok.count("[") - tok.count("]")
        segments[-1].append(tok)
    return [s for s in segments if s]


def examples_in(path: Path) -> list[Example]:
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    found: list[Example] = []
    for n, text in code_lines(path):
        try:
            tokens = shlex.split(text, comments=True)
        except ValueError:
            continue  # not a shell line (output, a table): no command to check
        for seg in _segments(tokens):
            while seg and (seg[0] in {"$", "sudo"} or _ENV.match(seg[0])):
                seg = seg[1:]
            if seg and (seg[0] in PROGRAMS or seg[0] == "make"):
                words = tuple(w.strip("[]") for w in seg[1:])
                found.append(Example(f"{rel}:{n}", seg[0], tuple(w for w in words if w)))
    return found


def all_examples() -> list[Example]:
    return [e for path in DOCS for e in examples_in(path)]


def _main(program: str) -> click.Command:
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == program]
    return ep.load()


def _option(command: click.Command, token: str) -> click.Parameter | None:
    name = token.split("=", 1)[0]
    if name == "--help":
        return click.Option(["--help"], is_flag=True)
    for p in command.params:
        if isinstance(p, click.Option) and name in (*p.opts, *p.secondary_opts):
            return p
    return None


def check(example: Example) -> tuple[list[str], list[str]]:
    """(the subcommand path, what is wrong with the example)."""
    if example.program == "make":
        targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:", (ROOT / "Makefile").read_text(), re.M))
        wanted = [w for w in example.words if not w.startswith("-") and "=" not in w]
        return [], [f"no make target {t!r}" for t in wanted if t not in targets]
    main = _main(example.program)
    command: click.Command = main
    ctx = click.Context(main, info_name=example.program)
    path: list[str] = []
    errors: list[str] = []
    words = list(example.words)
    i = 0
    # Walk the groups: a group takes its own options, then the name of a subcommand.
    while isinstance(command, click.Group) and i < len(words):
        word = words[i]
        if word.startswith("--"):
            opt = _option(command, word)
            if opt is None:
                break  # reported below, against the command the walk reached
            i += 1 if (getattr(opt, "is_flag", False) or "=" in word) else 1 + opt.nargs
            continue
        sub = command.get_command(ctx, word)
        if sub is None:
            if not any(isinstance(p, click.Argument) for p in command.params):
                where = " ".join([example.program, *path])
                errors.append(f"{where!r} has no subcommand {word!r}")
            break
        path.append(word)
        command = sub
        i += 1
    else:
        if isinstance(command, click.Group) and not command.invoke_without_command:
            errors.append(f"{' '.join([example.program, *path])!r} needs a subcommand")
    for word in words[i:]:
        if word.startswith("--") and _option(command, word) is None:
            errors.append(f"{' '.join([example.program, *path])!r} has no option {word!r}")
    return path, errors


@pytest.mark.parametrize("example", all_examples(), ids=str)
def test_doc_example_is_a_real_command(example: Example) -> None:
    path, errors = check(example)
    assert errors == [], f"{example}: " + "; ".join(errors)
    if example.program == "make":
        return
    result = CliRunner().invoke(_main(example.program), [*path, "--help"], prog_name="x")
    assert result.exit_code == 0, f"{example}: {example.program} {' '.join(path)} --help\n" + (
        result.output
    )
    assert "Usage:" in result.output


def test_the_docs_show_commands_of_every_program() -> None:
    """The scan really finds the examples (an empty scan would pass anything)."""
    examples = all_examples()
    assert {e.program for e in examples} == {*PROGRAMS, "make"}
    assert len(examples) > 30
    assert any(e.words[:2] == ("site", "add") for e in examples if e.program == "osiris")


@pytest.mark.parametrize(
    ("line", "wrong"),
    [
        ('osiris site add --name "Clinic A"', "'osiris site add' has no option '--name'"),
        ("osiris sites add Clinic", "'osiris' has no subcommand 'sites'"),
        ("osiris trust", "'osiris trust' needs a subcommand"),
        ("osiris evidence verify --packet p.zip --trusted t.json", "has no option '--trusted'"),
        ("osiris-agent status [--json] [--config FILE | --stat DIR]", "no option '--stat'"),
        (
            "osiris-server serve --data d \\\n    --listen-on 0.0.0.0:8443",
            "no option '--listen-on'",
        ),
        ("printf x | osiris cred add --site s --pasword-stdin", "no option '--pasword-stdin'"),
        ("osiris site list && osiris-agent enrol --server s", "no subcommand 'enrol'"),
        ("osiris site list --server https://cc", "'osiris site list' has no option '--server'"),
        ("make lint tests", "no make target 'tests'"),
    ],
)
def test_a_wrong_example_fails(tmp_path: Path, line: str, wrong: str) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"Text.\n\n```sh\n{line}\n```\n")
    errors = [err for e in examples_in(doc) for err in check(e)[1]]
    assert any(wrong in err for err in errors), errors


def test_a_right_example_passes(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\n"
        '$ osiris --server https://cc site add "Clinic A" --id clinic-a  # a comment --nope\n'
        "OSIRIS_TOKEN=t osiris packet build --site s --month 2026-10 --out x.zip \\\n"
        "    --previous y.zip\n"
        "make test PYTEST_ARGS=-x\n"
        "```\n"
    )
    examples = examples_in(doc)
    assert [check(e) for e in examples] == [
        (["site", "add"], []),
        (["packet", "build"], []),
        ([], []),
    ]
