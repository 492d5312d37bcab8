"""A DataTable refreshed by keyed diffing, so polling never moves the cursor, whose columns are
re-measured on every refresh and on resize, so they fit the screen they are on.

Why the table measures its own columns: Textual sizes a column once, from what it holds when
it is added (``update_cell`` never widens it), so a cell that grew later (``L1 healed after 3``
where ``-`` was) was cut to ``L1 hea…`` beside empty space, and a wide table at 80 columns hid
its verdict off-screen. Here every column has an explicit width, recomputed from the current
content and the table's width whenever either changes, by the one rule of
``osiris_tui.column_fit`` (least important columns shrink, then hide; ``HOST``/``STATUS`` stay).
A cut value is never the only copy: ``i`` (and enter where a view opens its own detail) shows
the row whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from ..column_fit import HIDDEN, Fit, fit_of, fit_widths

SCROLLBAR = 2  # cells kept free for the vertical scrollbar, shown or not (no jitter)


class KeyedTable(DataTable):
    """Rows keyed by stable ids; ``sync`` adds, updates changed cells, and removes rows."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g", "scroll_top", "Top", show=False, id="table.top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="table.bottom"),
        Binding("i", "row_detail", "Row detail", show=False, id="table.detail"),
    ]

    def __init__(
        self,
        columns: Sequence[tuple[str, str]],
        *,
        fits: Mapping[str, Fit] | None = None,
        **kw: object,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)  # type: ignore[arg-type]
        self._columns = list(columns)
        self._keys = [k for k, _ in self._columns]
        self._fits = [(fits or {}).get(k) or fit_of(k) for k in self._keys]
        self._cache: dict[str, tuple[str, ...]] = {}
        self._cells: dict[str, list[Text]] = {}
        self._cell_widths: dict[str, tuple[int, ...]] = {}
        self._natural: list[int] = [cell_len(label) for _, label in self._columns]
        self._widths: list[int] = list(self._natural)
        self._budget = -1

    def on_mount(self) -> None:
        self._rebuild()

    # ---- rows

    def sync(self, rows: dict[str, list[Text]], order: Sequence[str] | None = None) -> None:
        """Make the table show exactly ``rows`` (in ``order`` for new rows), touching only
        what changed. The cursor stays on the same row key when that row still exists.
        Afterwards the columns are re-fitted if the widest cell of any column changed."""
        cur = self.cursor_key()
        keys = list(order) if order is not None else list(rows)
        shown = self._shown()
        with self.app.batch_update():
            for gone in [k for k in self._cache if k not in rows]:
                self.remove_row(gone)
                del self._cache[gone]
                self._cells.pop(gone, None)
                self._cell_widths.pop(gone, None)
            for k in keys:
                cells = rows[k]
                plain = tuple(c.plain + "\0" + str(c.style) for c in cells)
                old = self._cache.get(k)
                if old is None:
                    self.add_row(*[cells[i] for i in shown], key=k)
                elif old != plain:
                    for i in shown:
                        if plain[i] != old[i]:
                            self.update_cell(k, self._keys[i], cells[i])
                if old != plain:
                    self._cells[k] = cells
                    self._cell_widths[k] = tuple(cell_len(c.plain) for c in cells)
                self._cache[k] = plain
            self.refit()
        if cur is not None and cur in self._cache:
            self.select_key(cur)

    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - an empty or shrinking table
            return None

    def select_key(self, key: str) -> None:
        try:
            idx = self.get_row_index(key)
        except RowDoesNotExist:
            return
        if idx != self.cursor_row:
            self.move_cursor(row=idx, animate=False)

    def reset(self) -> None:
        self.clear()
        self._cache.clear()
        self._cells.clear()
        self._cell_widths.clear()

    def row_keys(self) -> list[str]:
        return list(self._cache)

    def row_cells(self, key: str) -> list[tuple[str, Text]]:
        """Every column of a row, hidden or cut ones whole: (header, cell)."""
        cells = self._cells.get(key, [])
        return [(label, c) for (_, label), c in zip(self._columns, cells, strict=False)]

    # ---- widths

    def natural_widths(self) -> list[int]:
        """Each column's widest content (header included), over every row held."""
        nat = [cell_len(label) for _, label in self._columns]
        for widths in self._cell_widths.values():
            for i, w in enumerate(widths):
                if w > nat[i]:
                    nat[i] = w
        return nat

    def budget(self) -> int:
        return max(0, self.size.width - SCROLLBAR)

    def refit(self) -> None:
        """Re-apply the fit rule when the content's widths or the table's width changed."""
        natural = self.natural_widths()
        budget = self.budget()
        if natural == self._natural and budget == self._budget:
            return
        self._natural, self._budget = natural, budget
        if budget <= 0:  # not laid out yet: natural widths, fitted on the first resize
            widths = list(natural)
        else:
            widths = fit_widths(natural, self._fits, budget, pad=2 * self.cell_padding)
        was_shown = self._shown()
        self._widths = widths
        if self._shown() != was_shown:
            self._rebuild()
            return
        for key, w in zip(self._keys, widths, strict=True):
            column = self.columns.get(key)  # type: ignore[call-overload]
            if column is not None and w != HIDDEN:
                column.width = w
                column.auto_width = False
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()

    def _shown(self) -> list[int]:
        return [i for i, w in enumerate(self._widths) if w != HIDDEN]

    def _rebuild(self) -> None:
        """(Re)create the shown columns and re-add every row: only when a column hides or
        comes back (a resize), never on a poll."""
        cur = self.cursor_key() if self.columns else None
        shown = self._shown()
        # the rows as shown now (a caller may have sorted them), then any not yet added
        keys = [str(r.key.value) for r in self.ordered_rows if r.key.value in self._cache]
        seen = set(keys)
        keys += [k for k in self._cache if k not in seen]
        self.clear(columns=True)
        for i in shown:
            self.add_column(self._columns[i][1], key=self._keys[i], width=self._widths[i])
        for k in keys:
            cells = self._cells[k]
            self.add_row(*[cells[i] for i in shown], key=k)
        if cur is not None:
            self.select_key(cur)

    def on_resize(self, _event: Resize) -> None:
        self.refit()

    # ---- keys

    def action_row_detail(self) -> None:
        """The selected row whole: every column, hidden or cut ones included."""
        key = self.cursor_key()
        if key is None:
            return
        from .row_detail import RowModal

        self.app.push_screen(RowModal(self.row_cells(key)))
