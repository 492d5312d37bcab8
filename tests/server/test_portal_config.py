"""``[portal]`` in server.toml: off by default, refused clearly when it cannot work (exit 2 at
start, one line): no [smtp] to mail links through, a URL that is not the portal's, limits out of
range, unknown keys. A https portal sets Secure cookies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from osiris_server import config as config_mod
from osiris_server.app import init_data
from osiris_server.portal.config import PortalConfig

SMTP = '[smtp]\nhost = "127.0.0.1"\nport = 2525\nstarttls = false\n'


def _data(tmp: Path, extra: str) -> Path:
    data = tmp / "d"
    init_data(data, "t.osiris/osiris/log")
    with open(data / "server.toml", "a") as f:
        f.write("\n" + extra)
    return data


def test_off_by_default_and_on_with_smtp(tmp_path: Path) -> None:
    data = _data(tmp_path, SMTP + '[portal]\nurl = "https://cc.example/portal/"\n'
                 "session_idle_min = 20\n")  # fmt: skip
    cfg = config_mod.load(data)
    assert cfg.portal == PortalConfig(url="https://cc.example/portal", session_idle_min=20)
    assert cfg.portal.secure_cookie
    assert config_mod.load(_data(tmp_path / "b", SMTP)).portal is None


@pytest.mark.parametrize(
    ("section", "why"),
    [
        ('[portal]\nurl = "https://cc.example/portal"\n', "needs [smtp]"),
        (SMTP + '[portal]\nurl = "cc.example/portal"\n', "http(s) URL"),
        (SMTP + '[portal]\nurl = "https://cc.example/other"\n', "end in /portal"),
        (SMTP + '[portal]\nurl = "https://cc.example/portal?x=1"\n', "without query"),
        (SMTP + '[portal]\nurl = "https://cc.example/portal"\nlink_ttl_min = 60\n', "1..15"),
        (SMTP + '[portal]\nurl = "https://cc.example/portal"\nsession_max_h = 0\n', "1..168"),
        (SMTP + '[portal]\nurl = "https://cc.example/portal"\nsesion_max_h = 1\n', "unknown keys"),
        (
            SMTP + '[portal]\nurl = "https://cc.example/portal"\nsession_idle_min = 600\n'
            "session_max_h = 2\n",
            "exceeds",
        ),
    ],
)
def test_what_cannot_work_is_refused_at_start(tmp_path: Path, section: str, why: str) -> None:
    data = _data(tmp_path, section)
    with pytest.raises(config_mod.ConfigError, match=why.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):  # fmt: skip
        config_mod.load(data)
    cmd = [sys.executable, "-m", "osiris_server.cli", "serve", "--data", str(data), "--listen",
           "127.0.0.1:0"]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "[portal]" in p.stderr


def test_the_cookie_is_secure_over_https() -> None:
    from osiris_server.http import Request
    from osiris_server.portal import sessions

    plain = Request({"wsgi.url_scheme": "http"}, b"")
    tls = Request({"wsgi.url_scheme": "https"}, b"")
    http_cfg = PortalConfig(url="http://127.0.0.1:8080/portal")
    https_cfg = PortalConfig(url="https://cc.example/portal")
    assert "Secure" not in sessions.set_cookie(http_cfg, plain, "v")[1]
    for cfg, req in ((https_cfg, plain), (http_cfg, tls), (https_cfg, tls)):
        for name, value in (sessions.set_cookie(cfg, req, "v"), sessions.clear_cookie(cfg, req)):
            assert name == "Set-Cookie" and value.endswith("; Secure")
            assert "HttpOnly" in value and "SameSite=Strict" in value and "Path=/portal" in value
