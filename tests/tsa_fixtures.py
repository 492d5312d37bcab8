"""Real lab TSAs (``openssl ts -reply`` on loopback, osiris_lab/tsa.py) for the timestamp tests.

Import the fixtures into a test module (``from tests.tsa_fixtures import lab_tsa, other_tsa``).
Session-scoped: making a CA and a TSA certificate costs a few openssl runs, and the TSAs hold no
state a test could disturb (``down()`` is undone by the tests that use it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from osiris_lab.tsa import LabTsa, available


@pytest.fixture(scope="session")
def lab_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabTsa]:
    if not available():  # pragma: no cover - openssl is on every test machine
        pytest.skip("openssl is not installed")
    with LabTsa(tmp_path_factory.mktemp("tsa-a")) as tsa:
        yield tsa


@pytest.fixture(scope="session")
def other_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabTsa]:
    """Another TSA with another CA: the wrong-TSA case."""
    with LabTsa(tmp_path_factory.mktemp("tsa-b"), "Other Lab TSA") as tsa:
        yield tsa
