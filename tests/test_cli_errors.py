"""No traceback reaches a user from any command (issue 12, DESIGN §4.2).

Every leaf command of `osiris`, `osiris-agent` and `osiris-server`, found by walking click's
command tree (a new command is covered without touching this file), is run as a real process in
four situations: (a) bad arguments, (b) a dead server (a closed port), (c) a wrong token
against a real `osiris-server`, (d) a corrupt data/state dir. Each run must exit with a
documented code (``ExitCode``), print no traceback and no token it was given, and, on failure,
end stderr with one ``<prog>: error: …`` line (click's own usage message for usage errors,
exit 2); the only other lines allowed are ``<prog>: warning: …``.

The runs of one situation go in parallel (a thread pool of subprocesses) and are shared by the
parametrised tests, so a failure names its command and the whole module stays around a minute.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import click
import httpx
import pytest

from osiris_agent.cli import main as agent_main
from osiris_core.errors import ExitCode
from osiris_server.cli import main as server_main
from osiris_tui.cli import main as osiris_main
from tests.tui.conftest import start

BIN = Path(sys.executable).parent
DOCUMENTED = {int(c) for c in ExitCode}
WRONG_OPERATOR = "osk_" + "W" * 40
WRONG_APPLIANCE = "oak_" + "W" * 40
CLIS = {"osiris": osiris_main, "osiris-agent": agent_main, "osiris-server": server_main}

# Commands that never return by themselves (they serve or run until a signal) or open a full
# screen: run only with bad arguments and the corrupt dir (where they must stop at once).
LONG_RUNNING = {
    ("osiris-agent", ("run",)),
    ("osiris-server", ("serve",)),
    ("osiris", ("tui",)),
    ("osiris-agent", ("setup",)),
    ("osiris", ("demo",)),
}
# `osiris` commands that read local files only (no --server/--token involved).
OSIRIS_LOCAL = {
    ("trust", "add"),
    ("trust", "list"),
    ("trust", "remove"),
    ("evidence", "verify"),
    ("demo", "chaos"),
    ("demo", "hosts"),
}


def leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name in sorted(group.commands):
        cmd = group.commands[name]
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            if cmd.invoke_without_command:
                yield path
            yield from leaves(cmd, path)
        else:
            yield path


def command(prog: str, path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = CLIS[prog]
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


ALL = [(prog, path) for prog, grp in CLIS.items() for path in leaves(grp)]


def ids(case: tuple[str, tuple[str, ...]]) -> str:
    return " ".join([case[0], *case[1]])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Scene:
    """Where one situation's paths and values come from."""

    name: str
    server: str  # for --server
    token: str  # for --token (osiris)
    config: Path  # osiris-agent --config
    state: Path  # osiris-agent --state
    data: Path  # osiris-server --data, osiris --data / --local
    file: Path  # any existing file argument
    out: Path  # where a command may write
    env: dict[str, str]
    copy: bool = True  # give each agent command its own copy of ``state``


def value_for(param: click.Parameter, scene: Scene) -> str:
    """A value click accepts for ``param``, taken from the scene where the name says what it is."""
    name = param.name or ""
    named = {
        "server": scene.server,
        "token": scene.token,
        "config": str(scene.config),
        "state": str(scene.state),
        "data": str(scene.data),
        "local_dir": str(scene.state),
        "out": str(scene.out),
        "mac": "02:00:00:00:00:01",
    }
    if name in named:
        return named[name]
    t = param.type
    if isinstance(t, click.Choice):
        return str(t.choices[0])
    if isinstance(t, click.IntRange):
        return str(t.min if t.min is not None else 1)
    if isinstance(t, (click.File, click.Path)):
        if isinstance(t, click.Path) and not t.file_okay:
            return str(scene.data)
        return str(scene.file)
    if t is click.INT:
        return "1"
    if name == "assignments":
        return "x=1"
    return "x1"


def argv(prog: str, path: tuple[str, ...], scene: Scene) -> list[str]:
    cmd = command(prog, path)
    args: list[str] = []
    names = {p.name for p in cmd.params}
    for p in cmd.params:
        if isinstance(p, click.Argument):
            if p.required:
                args.append(value_for(p, scene))
        elif isinstance(p, click.Option) and not p.is_flag:
            wanted = p.required or p.name in {"config", "data", "server", "local_dir"}
            if p.name == "state" and "config" not in names:
                wanted = True  # enroll, and commands that take only --state
            if wanted:
                args += [p.opts[0], value_for(p, scene)]
    for flag in ("yes", "password_stdin"):
        if flag in names:
            args.append(next(p.opts[0] for p in cmd.params if p.name == flag))
    root: list[str] = []
    if prog == "osiris" and path[0] not in {"trust", "evidence", "packet", "demo", "tui"}:
        if scene.server:
            root = ["--server", scene.server, "--token", scene.token]
    return [str(BIN / prog), *root, *path, *args]


@dataclass
class Run:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str


def run_all(cases: list[tuple[str, tuple[str, ...]]], scene: Scene, extra: list[str] | None = None):
    """Run every case in parallel. Each agent command gets its own copy of the state dir (one
    decommissions it), each operator command its own wrong token (the server rate-limits the
    failures of one presented credential) and enroll a fresh state dir."""

    def one(
        item: tuple[int, tuple[str, tuple[str, ...]]],
    ) -> tuple[tuple[str, tuple[str, ...]], Run]:
        i, (prog, path) = item
        sc = scene
        if scene.token:
            sc = replace(sc, token=f"{scene.token}{i:03d}")
        if prog == "osiris-agent" and (scene.state / "agent.toml").is_file() and scene.copy:
            own = scene.state.parent / f"state-{i}"
            sc = replace(sc, state=own, config=_copy_state(scene.state, own))
        if path == ("enroll",) and scene.copy:
            sc = replace(sc, state=scene.state.parent / f"fresh-{i}")
        cmd = argv(prog, path, sc) if extra is None else [str(BIN / prog), *path, *extra]
        try:
            p = subprocess.run(
                cmd,
                input="pw-not-a-real-one\n",
                capture_output=True,
                text=True,
                timeout=120,
                env=scene.env,
                cwd=scene.out.parent.parent,
            )
            return (prog, path), Run(cmd, p.returncode, p.stdout, p.stderr)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
            return (prog, path), Run(cmd, -999, "", f"TIMEOUT\n{err}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, enumerate(cases)))


def check_shape(prog: str, r: Run, secrets: tuple[str, ...] = ()) -> None:
    where = f"{' '.join(r.argv)}\nrc={r.rc}\nstdout={r.stdout[-800:]}\nstderr={r.stderr[-2000:]}"
    assert r.rc in DOCUMENTED, where
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, where
    for s in secrets:
        assert s not in r.stderr and s not in r.stdout, where
    if r.rc == ExitCode.OK:
        return
    lines = r.stderr.strip().splitlines()
    assert lines, where
    if r.rc == ExitCode.USAGE and "Usage:" in r.stderr:  # click's usage message
        assert lines[-1].startswith("Error: "), where
        return
    assert lines[-1].startswith(f"{prog}: error: "), where
    assert all(ln.startswith(f"{prog}: warning: ") for ln in lines[:-1]), where


# ---------------------------------------------------------------- the situations


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env["HOME"] = str(tmp / "home")
    env["OSIRIS_PROFILE_FILE"] = str(tmp / "home" / "no-profiles.toml")
    env["OSIRIS_TRUST_FILE"] = str(tmp / "home" / "trust.json")
    env["XDG_CONFIG_HOME"] = str(tmp / "home" / ".config")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    (tmp / "home").mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    """A real osiris-server with one site and one enrolled osiris-agent state dir."""
    tmp = tmp_path_factory.mktemp("errsrv")
    proc, srv = start(tmp)
    try:
        with srv.admin() as h:
            assert h.post("/api/v1/sites", json={"name": "A", "id": "a"}).status_code == 201
            code = h.post("/api/v1/provisions", json={"site_id": "a", "ttl_s": 3600}).json()
        state = tmp / "state"
        subprocess.run(
            [str(BIN / "osiris-agent"), "enroll", "--server", srv.url, "--claim-code",
             code["code"], "--state", str(state), "--lab"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield srv, state
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _copy_state(state: Path, dest: Path, server_url: str | None = None) -> Path:
    shutil.copytree(state, dest)
    toml = (dest / "agent.toml").read_text().replace(str(state), str(dest))
    if server_url is not None:
        toml = toml.replace("[server]\nurl = ", f'[server]\nurl = "{server_url}"\nold_url = ', 1)
        toml = "\n".join(ln for ln in toml.splitlines() if not ln.startswith("old_url = "))
    (dest / "agent.toml").write_text(toml + "\n")
    return dest / "agent.toml"


def _scene(name: str, tmp: Path, server: str, token: str, config: Path, state: Path) -> Scene:
    tmp.mkdir(parents=True, exist_ok=True)
    f = tmp / "some-file.json"
    f.write_text("{}\n")
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    (tmp / "written").mkdir(exist_ok=True)
    return Scene(name, server, token, config, state, data, f, tmp / "written" / "o", _env(tmp))


@pytest.fixture(scope="module")
def bad_args_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("badargs")
    scene = _scene("bad", tmp, "", "", tmp / "none.toml", tmp / "none")
    return run_all(ALL, scene, extra=["--no-such-option-at-all"])


@pytest.fixture(scope="module")
def dead_runs(live, tmp_path_factory: pytest.TempPathFactory) -> dict:
    _srv, state = live
    tmp = tmp_path_factory.mktemp("dead")
    dead = f"http://127.0.0.1:{free_port()}"  # bound and closed again: connection refused
    config = _copy_state(state, tmp / "state", dead)
    scene = _scene("dead", tmp, dead, WRONG_OPERATOR, config, tmp / "state")
    cases = [c for c in ALL if c not in LONG_RUNNING and c[0] != "osiris-server"]
    return run_all(cases, scene)


@pytest.fixture(scope="module")
def wrong_token_runs(live, tmp_path_factory: pytest.TempPathFactory) -> dict:
    srv, state = live
    tmp = tmp_path_factory.mktemp("wrongtok")
    config = _copy_state(state, tmp / "state")
    (tmp / "state" / "token").write_text(WRONG_APPLIANCE)
    scene = _scene("wrong", tmp, srv.url, WRONG_OPERATOR, config, tmp / "state")
    cases = [c for c in ALL if c not in LONG_RUNNING and c[0] != "osiris-server"]
    return run_all(cases, scene)


@pytest.fixture(scope="module")
def corrupt_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A data/state dir whose every file is garbage: databases, TOML, keys, pins, JSON."""
    tmp = tmp_path_factory.mktemp("corrupt")
    junk = b"\x00\xffnot what you think\x1b[2J\n"
    state = tmp / "state"
    data = tmp / "data"
    for d in (state, data, data / "keys"):
        d.mkdir(parents=True)
    for name in ("agent.toml", "state.db", "pins.json", "token", "appliance.key", "cosign.key"):
        (state / name).write_bytes(junk)
        (state / name).chmod(0o600)
    for name in ("osiris.db", "log.db", "server.toml"):
        (data / name).write_bytes(junk)
        (data / name).chmod(0o600)
    for name in ("log.key", "order.key", "vault.keyring"):
        (data / "keys" / name).write_bytes(junk)
        (data / "keys" / name).chmod(0o600)
    scene = _scene("corrupt", tmp, "", "", state / "agent.toml", state)
    scene.data = data
    scene.file = state / "pins.json"
    scene.copy = False
    (tmp / "home" / "no-profiles.toml").write_bytes(junk)  # a corrupt operator profile too
    (tmp / "home" / "trust.json").write_bytes(junk)
    (tmp / "demo-data").mkdir()
    (tmp / "demo-data" / "demo.json").write_bytes(junk)
    cases = [c for c in ALL if c != ("osiris", ("demo",))]
    return run_all(cases, scene)


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("case", ALL, ids=ids)
def test_bad_arguments_are_click_usage_exit_2(bad_args_runs, case) -> None:
    r = bad_args_runs[case]
    check_shape(case[0], r)
    assert r.rc == ExitCode.USAGE and "No such option" in r.stderr, r.stderr


@pytest.mark.parametrize("case", [c for c in ALL if c not in LONG_RUNNING], ids=ids)
def test_dead_server(dead_runs, case) -> None:
    if case[0] == "osiris-server":
        pytest.skip("osiris-server contacts no server (serve's busy port: test below)")
    r = dead_runs[case]
    check_shape(case[0], r, (WRONG_OPERATOR,))
    prog, path = case
    if prog == "osiris" and path[:2] not in OSIRIS_LOCAL:
        assert r.rc in (ExitCode.UNREACHABLE, ExitCode.USAGE), r.stderr
        if r.rc == ExitCode.USAGE:  # refused locally before any request: it says why
            assert "unreachable" not in r.stderr
    if (prog, path) in {("osiris-agent", ("once",)), ("osiris-agent", ("enroll",)),
                        ("osiris-agent", ("rotate-key",)),
                        ("osiris-agent", ("decommission",))}:  # fmt: skip
        assert r.rc == ExitCode.UNREACHABLE, r.stderr


def test_dead_server_is_exit_3_for_most_operator_commands(dead_runs) -> None:
    remote = [c for c in dead_runs if c[0] == "osiris" and c[1][:2] not in OSIRIS_LOCAL]
    three = [c for c in remote if dead_runs[c].rc == ExitCode.UNREACHABLE]
    assert len(three) >= 0.8 * len(remote), {
        ids(c): (dead_runs[c].rc, dead_runs[c].stderr[-200:]) for c in remote if c not in three
    }


@pytest.mark.parametrize("case", [c for c in ALL if c not in LONG_RUNNING], ids=ids)
def test_wrong_token(wrong_token_runs, case) -> None:
    if case[0] == "osiris-server":
        pytest.skip("osiris-server takes no token")
    r = wrong_token_runs[case]
    check_shape(case[0], r, (WRONG_OPERATOR, WRONG_APPLIANCE))
    prog, path = case
    if prog == "osiris" and path[:2] not in OSIRIS_LOCAL:
        assert r.rc in (ExitCode.AUTH, ExitCode.USAGE), r.stderr
    if (prog, path) in {("osiris-agent", ("once",)), ("osiris-agent", ("rotate-key",))}:
        assert r.rc == ExitCode.AUTH, r.stderr


def test_wrong_token_is_exit_4_for_most_operator_commands(wrong_token_runs) -> None:
    remote = [c for c in wrong_token_runs if c[0] == "osiris" and c[1][:2] not in OSIRIS_LOCAL]
    four = [c for c in remote if wrong_token_runs[c].rc == ExitCode.AUTH]
    assert len(four) >= 0.8 * len(remote), {
        ids(c): (wrong_token_runs[c].rc, wrong_token_runs[c].stderr[-200:])
        for c in remote
        if c not in four
    }


@pytest.mark.parametrize("case", [c for c in ALL if c != ("osiris", ("demo",))], ids=ids)
def test_corrupt_data_dir(corrupt_runs, case) -> None:
    r = corrupt_runs[case]
    check_shape(case[0], r)
    takes_dir = any(p.name in ("data", "config", "state") for p in command(*case).params)
    if case[0] in ("osiris-agent", "osiris-server") and case[1] != ("init",) and takes_dir:
        assert r.rc == ExitCode.USAGE, r.stderr


def test_serve_on_a_busy_port_is_one_line_exit_2(tmp_path) -> None:
    data = tmp_path / "data"
    subprocess.run([str(BIN / "osiris-server"), "init", "--data", str(data)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = subprocess.run(
            [str(BIN / "osiris-server"), "serve", "--data", str(data), "--listen",
             f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    check_shape("osiris-server", Run(p.args, p.returncode, p.stdout, p.stderr))
    assert p.returncode == ExitCode.USAGE and "cannot listen" in p.stderr


def test_a_database_newer_than_the_binary_stops_serve_with_one_line_exit_2(tmp_path) -> None:
    data = tmp_path / "data"
    subprocess.run([str(BIN / "osiris-server"), "init", "--data", str(data)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    con = sqlite3.connect(data / "osiris.db")
    con.execute("INSERT INTO schema_version (version, applied_at) VALUES (9999, 'future')")
    con.commit()
    con.close()
    d = ["--data", str(data)]
    for args in (["serve", *d, "--listen", f"127.0.0.1:{free_port()}"],
                 ["token", "create", *d, "--role", "admin"], ["vault", "rotate", *d]):  # fmt: skip
        p = subprocess.run([str(BIN / "osiris-server"), *args],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        check_shape("osiris-server", Run(p.args, p.returncode, p.stdout, p.stderr))
        assert p.returncode == ExitCode.USAGE, p.stderr
        assert "newer than this osiris-server" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1


def test_an_unexpected_error_is_one_line_and_the_traceback_only_with_debug(live, tmp_path) -> None:
    """A server answer the client does not expect (a JSON list where an object belongs) is a bug
    path: one line and exit 5 by default, the traceback with --debug or OSIRIS_DEBUG=1."""
    srv, _state = live

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"[1, 2, 3]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        env = _env(tmp_path)
        base = [str(BIN / "osiris"), "--server", url, "--token", WRONG_OPERATOR]
        p = subprocess.run([*base, "site", "show", "x1"], capture_output=True, text=True,
                           timeout=60, env=env)  # fmt: skip
        check_shape("osiris", Run(p.args, p.returncode, p.stdout, p.stderr), (WRONG_OPERATOR,))
        assert p.returncode == ExitCode.INTERNAL and "internal error" in p.stderr
        p = subprocess.run([str(BIN / "osiris"), "--debug", *base[1:], "site", "show", "x1"],
                           capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
        assert p.returncode == ExitCode.INTERNAL and "Traceback" in p.stderr
        assert p.stderr.strip().splitlines()[-1].startswith("osiris: error: internal error")
        p = subprocess.run([*base, "site", "show", "x1"], capture_output=True, text=True,
                           timeout=60, env={**env, "OSIRIS_DEBUG": "1"})  # fmt: skip
        assert p.returncode == ExitCode.INTERNAL and "Traceback" in p.stderr
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert httpx.get(srv.url + "/healthz").status_code == 200


def test_the_walk_finds_every_command() -> None:
    """The walk is the coverage: it must see the commands the docs promise (DESIGN §4.2)."""
    names = {ids(c) for c in ALL}
    for want in ("osiris site add", "osiris evidence verify", "osiris trust add",
                 "osiris-agent once", "osiris-agent outbox flush", "osiris-agent witness reset",
                 "osiris-server serve", "osiris-server vault rotate", "osiris demo"):  # fmt: skip
        assert want in names
    assert len(ALL) > 60
    assert json.dumps(sorted(names))  # printable ids
