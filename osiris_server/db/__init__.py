"""Storage: one module per concern, all SQL behind ``Database`` (see engine.py)."""

from __future__ import annotations

from osiris_server.db.engine import Database, Writer, open_database

__all__ = ["Database", "Writer", "open_database"]
