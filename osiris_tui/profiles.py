"""Where the CLI and the console find their server and token: flags, environment, profiles.

Flags beat environment beat ``~/.config/osiris/profiles.toml``; that file holds operator tokens,
so, like ssh with a private key, a file others may read or write is refused. ``resolve`` also
says where the token came from, so that a refused token is reported with the place to fix it
(``token refused (401): the token from OSIRIS_TOKEN; …``) instead of a bare "unauthorized".
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .transport import TOKEN_FIX, UsageError


@dataclass(frozen=True)
class Config:
    server: str
    token: str
    token_from: str  # "--token", "OSIRIS_TOKEN" or 'profile "NAME" in PATH'

    @property
    def token_fix(self) -> str:
        """How to fix a refused token, naming where this one came from."""
        return f"the token from {self.token_from}; {TOKEN_FIX}"


def profile_path() -> Path:
    if os.environ.get("OSIRIS_PROFILE_FILE"):
        return Path(os.environ["OSIRIS_PROFILE_FILE"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "osiris" / "profiles.toml"


def resolve_config(
    server: str | None = None, token: str | None = None, profile: str | None = None
) -> tuple[str, str]:
    """Flags beat environment beat the profile file (``[name] server=… token=…``)."""
    c = resolve(server, token, profile)
    return c.server, c.token


def resolve(
    server: str | None = None, token: str | None = None, profile: str | None = None
) -> Config:
    """``resolve_config`` and where the token came from."""
    token_from = "--token" if token else "OSIRIS_TOKEN"
    server = server or os.environ.get("OSIRIS_SERVER")
    token = token or os.environ.get("OSIRIS_TOKEN")
    if not (server and token):
        path = profile_path()
        name = profile or os.environ.get("OSIRIS_PROFILE") or "default"
        if path.exists():
            try:
                mode = path.stat().st_mode
            except OSError as e:
                raise UsageError(f"{path}: cannot read profile file: {e}") from None
            if mode & 0o077:
                # it holds operator tokens: like ssh with a private key, refuse a shared file
                raise UsageError(
                    f"{path}: profile file is readable or writable by other users "
                    f"(mode {mode & 0o777:o}); it holds tokens: run `chmod 600 {path}`"
                )
            try:
                data = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise UsageError(f"{path}: cannot read profile file: {e}") from None
            section = data.get(name, {})
            if not isinstance(section, dict):
                raise UsageError(f"{path}: [{name}] is not a table")
            server = server or section.get("server")
            if not token:
                token = section.get("token")
                token_from = f'profile "{name}" in {path}'
        elif profile:
            raise UsageError(f"profile {profile!r} requested but {path} does not exist")
    if not server:
        raise UsageError("no server: pass --server, set OSIRIS_SERVER or write a profile")
    if not token:
        raise UsageError("no token: pass --token, set OSIRIS_TOKEN or write a profile")
    return Config(server.rstrip("/"), token, token_from)
