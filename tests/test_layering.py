"""The layering rules of DESIGN §1, proved by importing each package in a fresh interpreter."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

PACKAGES = ["osiris_core", "osiris_agent", "osiris_server", "osiris_tui"]
FORBIDDEN = {
    "osiris_core": {"osiris_agent", "osiris_server", "osiris_tui", "textual"},
    "osiris_agent": {"osiris_server", "osiris_tui", "textual"},
    "osiris_server": {"osiris_agent", "osiris_tui", "textual"},
}


def _modules(package: str) -> list[str]:
    mod = __import__(package)
    names = [package]
    for info in pkgutil.walk_packages(mod.__path__, prefix=package + "."):
        if ".lab" in info.name and package == "osiris_agent":
            names.append(info.name)
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_forbidden(package: str) -> None:
    modules = _modules(package)
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    bad = loaded & FORBIDDEN[package]
    assert not bad, f"{package} imports {sorted(bad)}"


def test_layering_check_catches_a_violation(tmp_path) -> None:
    """The check itself must be able to fail: a module importing textual is detected."""
    (tmp_path / "bad_mod.py").write_text("import textual\n")
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import bad_mod; "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
