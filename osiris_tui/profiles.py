"""Where the CLI and the console find their server and token: flags, environment, profiles.

Flags beat environment beat ``~/.config/osiris/profiles.toml``; that file holds operator tokens,
so, like ssh with a private key, a file others may read or write is refused.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from .transport import UsageError


def profile_path() -> Path:
    if os.environ.get("OSIRIS_PROFILE_FILE"):
        return Path(os.environ["OSIRIS_PROFILE_FILE"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "osiris" / "profiles.toml"


def resolve_config(
    server: str | None = None, token: str | None = None, profile: str | None = None
) -> tuple[str, str]:
    """Flags beat environment beat the profile file (``[name] server=… token=…``)."""
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
            token = token or section.get("token")
        elif profile:
            raise UsageError(f"profile {profile!r} requested but {path} does not exist")
    if not server:
        raise UsageError("no server: pass --server, set OSIRIS_SERVER or write a profile")
    if not token:
        raise UsageError("no token: pass --token, set OSIRIS_TOKEN or write a profile")
    return server.rstrip("/"), token
