"""The one id scheme of checks, runbooks and rules, as the section docs/runbooks.md shows.

Why a module of its own: the scheme is a promise to everyone who reads evidence (an id signed
into a bundle keeps its meaning forever), so it is written once, next to the catalogue it
describes, and generated into the docs with the catalogue's current aliases; the tests in
tests/core/test_id_scheme.py hold every catalogue id to it.
"""

from __future__ import annotations

from osiris_core.catalog.loader import Catalog


def id_scheme_section(cat: Catalog) -> list[str]:
    """The "Id scheme" section of docs/runbooks.md (lines, starting with a blank one)."""
    renamed = [f"`{alias}` → `{chk.id}`" for chk in cat.checks.values() for alias in chk.aliases]
    aliases = (
        "Former ids still folded today: " + ", ".join(renamed) + "."
        if renamed
        else "No check has been renamed so far, so the catalogue lists no alias."
    )
    return [
        "",
        "## Id scheme",
        "",
        "- **Check ids** are lower_snake_case (`^[a-z][a-z0-9_]{0,63}$`, the evidence format's",
        "  form): `<topic>` for a check every platform runs (`firewall`, `disk_space`),",
        "  `<platform>_<topic>` (`windows_`, `linux_`, `nixos_`) for one platform's own check",
        "  (`linux_ssh`, `nixos_generation`), and a bare `<topic>` on the appliance only for its",
        "  own records (`evidence_pipeline`, `policy`, `policy_change`, `appliance_decommission`).",
        "- **Runbook ids** are `RB-WIN-<AREA>-NNN` (Windows), `RB-NIX-<AREA>-NNN` (the",
        "  appliance) and `LIN-<AREA>-NNN` (Linux hosts); the prefix names the platform the",
        "  runbook runs on.",
        "- **Rule ids** are `L1-<WIN|NIX|LIN>-<AREA>-NNN[-TAG]`, with the platform and area of the",
        "  runbook the rule runs (`L1-LIN-SSH-001` runs `LIN-SSH-001`).",
        "- **An id already signed into evidence is never renamed or reused.** If a check must be",
        '  renamed, it gets its new id and keeps the old one in `aliases = ["old_id"]` in',
        "  `checks.toml`; the verifier, packets and drift views count a bundle signed under the",
        "  old id under the new one (docs/evidence-format.md, Vocabulary).",
        "  " + aliases,
    ]
