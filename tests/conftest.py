"""Session-wide isolation: no test reads or writes the developer's own config (trust store,
profiles) — each session gets an empty XDG_CONFIG_HOME of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg-config"))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = old


# ---------------------------------------------------------------- storage engines
# `--db-engine=postgresql` (or OSIRIS_TEST_DB=postgresql) runs every test that asks for
# `db_url` — the server fixtures do — against a real, throwaway PostgreSQL cluster started once
# per session under the session's temp dir (osiris_lab.pgcluster); each test gets a fresh
# database of its own. `make test` runs the server suites once per engine.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db-engine",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("OSIRIS_TEST_DB", "sqlite"),
        help="storage engine for the server fixtures (default sqlite)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"osiris storage engine: {config.getoption('--db-engine')}"


@pytest.fixture(scope="session")
def db_engine(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db-engine"))


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory, db_engine: str) -> Iterator[object]:
    """One real PostgreSQL for the session. Where none is installed the test is skipped —
    unless PostgreSQL was asked for (``--db-engine=postgresql``, or OSIRIS_REQUIRE_PG=1 as
    ``.ci/run`` sets): then it fails, so CI can never pass by skipping every PostgreSQL test."""
    from osiris_lab.pgcluster import PgCluster

    if not PgCluster.available():
        msg = "PostgreSQL is not installed here (apt-get install postgresql)"
        if db_engine == "postgresql" or os.environ.get("OSIRIS_REQUIRE_PG") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    cluster = PgCluster.start(tmp_path_factory.mktemp("pg"))
    try:
        yield cluster
    finally:
        cluster.stop()


_PG_DBS = iter(range(1, 10**9))


@pytest.fixture
def pg_url(pg_cluster: object) -> str:
    """A fresh, empty PostgreSQL database on the session's cluster."""
    return pg_cluster.create_database(f"t{next(_PG_DBS)}")  # type: ignore[attr-defined]


@pytest.fixture
def db_url(db_engine: str, request: pytest.FixtureRequest) -> str | None:
    """None on SQLite (the data dir's own files), else a fresh PostgreSQL database's URL."""
    if db_engine == "sqlite":
        return None
    return request.getfixturevalue("pg_url")
