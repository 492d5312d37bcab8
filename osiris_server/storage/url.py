"""What ``--db`` / ``server.toml``'s ``db`` may say, and how it is shown (never a password)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(value: str | None) -> bool:
    return bool(value) and urlsplit(str(value)).scheme in POSTGRES_SCHEMES


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs, errors and ``status``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
