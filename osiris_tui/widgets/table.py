"""A DataTable refreshed by keyed diffing, so polling never moves the cursor."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist


class KeyedTable(DataTable):
    """Rows keyed by stable ids; ``sync`` adds, updates changed cells, and removes rows."""

    def __init__(self, columns: Sequence[tuple[str, str]], **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)  # type: ignore[arg-type]
        self._columns = list(columns)
        self._cache: dict[str, tuple[str, ...]] = {}

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

    def sync(self, rows: dict[str, list[Text]], order: Sequence[str] | None = None) -> None:
        """Make the table show exactly ``rows`` (in ``order`` for new rows), touching only
        what changed. The cursor stays on the same row key when that row still exists."""
        cur = self.cursor_key()
        keys = list(order) if order is not None else list(rows)
        with self.app.batch_update():
            for gone in [k for k in self._cache if k not in rows]:
                self.remove_row(gone)
                del self._cache[gone]
            for k in keys:
                cells = rows[k]
                plain = tuple(c.plain + "\0" + str(c.style) for c in cells)
                old = self._cache.get(k)
                if old is None:
                    self.add_row(*cells, key=k)
                elif old != plain:
                    for (ck, _), new, was in zip(self._columns, plain, old, strict=True):
                        if new != was:
                            self.update_cell(k, ck, cells[[c for c, _ in self._columns].index(ck)])
                self._cache[k] = plain
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
