"""The security tests reuse the real-server fixtures of the server suite."""

from __future__ import annotations

from tests.server.conftest import server, server_factory  # noqa: F401
