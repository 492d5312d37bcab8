"""How a console table's columns share the screen's width (headless: no Textual import).

Why its own module: every console table must fit 80 columns *and* use 160, and the rule of
which column gives way first has to be the same everywhere (a technician learns that `HOST` and
`STATUS` always stay), so the rule is a pure function here and ``widgets.table.KeyedTable``
only measures and applies it.

A column's :class:`Fit` says how important it is (``priority`` 0 never hides; higher numbers
shrink first and hide first) and how narrow it may get before it hides (``min_width``). Hints
are looked up by column key (``FIT``): keys are shared across tables (``host``, ``status``,
``observed``…), so one table of hints covers the fleet, the appliance tabs and the local
console alike; a table may still pass its own.

The rule (:func:`fit_widths`): every column gets its natural width (widest cell or header) when
they all fit. Otherwise the least important columns shrink first, down to their ``min_width``
(rightmost first among equals), detail columns hide before an important one is cut, and
never is a priority-0 column hidden. A cut cell ends in ``…`` and the table's
row detail (``i``, or enter where a view opens one) shows the whole value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HIDDEN = 0  # a width of 0 from fit_widths: the column is not shown at this width


@dataclass(frozen=True)
class Fit:
    """``priority``: 0 essential (never hidden), 1 important, 2 normal, 3 detail (first to
    give way). ``min_width``: the narrowest it is shown (a cut value ends in ``…``)."""

    priority: int = 2
    min_width: int = 6


# By column key. Unlisted keys are normal (priority 2, min 6).
FIT: dict[str, Fit] = {
    # what a row *is* and its verdict: always shown
    "status": Fit(0, 8),
    "state": Fit(0, 8),
    "outcome": Fit(0, 8),
    "host": Fit(0, 8),
    "check": Fit(0, 10),
    "name": Fit(0, 8),
    "id": Fit(1, 8),
    "seq": Fit(0, 3),
    "site": Fit(1, 6),
    # the numbers a technician scans
    "drift": Fit(1, 5),
    "err": Fit(1, 3),
    "inc": Fit(1, 3),
    "score": Fit(1, 5),
    "since": Fit(2, 5),
    "seen": Fit(2, 5),
    "heal": Fit(1, 10),
    "action": Fit(1, 8),
    # long free text: first to shrink, detail pane shows it whole
    "observed": Fit(3, 10),
    "expected": Fit(3, 10),
    "controls": Fit(3, 8),
    "summary": Fit(3, 10),
    "detail": Fit(3, 8),
    "description": Fit(3, 10),
    "fingerprint": Fit(3, 8),
    "bundle": Fit(3, 8),
    "receipt": Fit(2, 8),
    "flags": Fit(3, 6),
    "secret": Fit(3, 6),
    "created": Fit(3, 10),
    "updated": Fit(3, 10),
    "at": Fit(2, 10),
}


def fit_of(key: str) -> Fit:
    return FIT.get(key, Fit())


def fit_widths(natural: Sequence[int], fits: Sequence[Fit], budget: int, pad: int = 2) -> list[int]:
    """Content widths (``HIDDEN`` = not shown) so that the shown columns, each plus ``pad``
    cells of padding, fit in ``budget`` cells. ``natural`` is each column's widest content.

    In this order, each step least important column first, stopping as soon as it fits: shrink
    the detail columns (priority 3) to their minimum, then hide them (``i`` still shows them);
    shrink the normal (2), the important (1), then the essential ones (0); hide priority 2,
    then 1. Width freed beyond
    the need goes back to the cut columns, most important first. What is still too wide
    scrolls sideways."""
    widths = list(natural)
    over = sum(widths) + pad * len(widths) - budget
    if over <= 0:
        return widths
    order = sorted(range(len(widths)), key=lambda i: (-fits[i].priority, -i))

    def shrink(i: int) -> None:
        nonlocal over
        take = min(over, widths[i] - min(natural[i], fits[i].min_width))
        if take > 0:
            widths[i] -= take
            over -= take

    def hide(i: int) -> None:
        nonlocal over
        over -= widths[i] + pad
        widths[i] = HIDDEN

    steps = [
        (shrink, lambda p: p >= 3),
        (hide, lambda p: p >= 3),
        (shrink, lambda p: p == 2),
        (shrink, lambda p: p == 1),
        (shrink, lambda p: p == 0),
        (hide, lambda p: p == 2),
        (hide, lambda p: p == 1),
    ]
    for step, applies in steps:
        for i in order:
            if over <= 0:
                break
            if widths[i] != HIDDEN and applies(fits[i].priority):
                step(i)
    if over < 0:
        cut = [i for i in range(len(widths)) if 0 < widths[i] < natural[i]]
        for i in sorted(cut, key=lambda i: (fits[i].priority, i)):
            give = min(-over, natural[i] - widths[i])
            widths[i] += give
            over += give
            if over >= 0:
                break
    return widths
