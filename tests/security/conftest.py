"""The security tests reuse the real-server fixtures of the server suite."""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401
    index_urls,
    pg_index_template,
    server,
    server_factory,
)
