"""Fixtures for the real-host suite: a cached Debian 12 root and one booted host per test.

Why a host per test (``debian_host``): a heal changes the real host (sshd config, units,
netfilter rules), and a booted copy costs ~2.5 s here, so no test inherits another's state.
``module_host`` is one host for a module whose cases touch disjoint files and units. With
``OSIRIS_REQUIRE_REALHOST=1`` (CI exports it) a host that cannot be built or booted FAILS the
suite instead of skipping it: a CI run must never go green with the real-host tests unrun.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import count

import pytest

from osiris_lab.debian_host import DebianHost, DebianRoot, HostUnavailable

_REQUIRED = os.environ.get("OSIRIS_REQUIRE_REALHOST") == "1"
_n = count(1)


def _unavailable(exc: HostUnavailable) -> None:
    if _REQUIRED:
        pytest.fail(f"OSIRIS_REQUIRE_REALHOST=1 and {exc}", pytrace=False)
    pytest.skip(str(exc))


@pytest.fixture(scope="session")
def debian_root() -> DebianRoot:
    try:
        return DebianRoot.ensure(os.environ.get("OSIRIS_REALHOST_CACHE") or None)
    except HostUnavailable as exc:
        _unavailable(exc)
        raise


def _booted(root: DebianRoot, factory: pytest.TempPathFactory) -> Iterator[DebianHost]:
    name = f"osr{os.getpid() % 100000}{next(_n)}"[:11]
    try:
        host = DebianHost.boot(root, factory.mktemp("realhost"), name)
    except HostUnavailable as exc:
        _unavailable(exc)
        raise
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture()
def debian_host(
    debian_root: DebianRoot, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DebianHost]:
    yield from _booted(debian_root, tmp_path_factory)


@pytest.fixture(scope="module")
def module_host(
    debian_root: DebianRoot, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DebianHost]:
    """One host for a module whose cases each drift and heal their own files and units (the
    2-core box boots one host, not one per case)."""
    yield from _booted(debian_root, tmp_path_factory)
