"""Plain aligned columns for tables that grow with the fleet (``watch status``, ``watch list``, the forecast).

rich's ``Table`` measures and lays out every cell through its renderables: about 0.5 ms per row, five seconds
for a 10,000-target ``watch status``. These tables need none of it: every cell is one line of already escaped
text, a column is as wide as its widest cell (terminal cells, so East Asian wide characters count twice), two
spaces apart, and nothing is cut or wrapped (a terminal folds a long line itself; a pipe gets whole lines, as
``ps`` and ``kubectl get`` give them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rich.cells import cell_len

from .escape import clean

GAP = "  "


def aligned(headers: Sequence[str], rows: Iterable[Sequence[object]], *, limit: int = 1000) -> Iterator[str]:
    """The header line, then one line per row; trailing spaces dropped.

    Every cell goes through :func:`certdoctor.render.escape.clean` (control and bidirectional characters
    escaped, cut at ``limit`` characters), so attacker-controlled names cannot move the cursor or reorder
    the columns. ``None`` shows as an empty cell.
    """
    table = [[clean("" if c is None else c, limit) for c in row] for row in rows]
    columns = len(headers)
    widths = [cell_len(h) for h in headers]
    for row in table:
        if len(row) != columns:
            raise ValueError(f"row of {len(row)} cells under {columns} headers")
        for i, cell in enumerate(row):
            n = len(cell) if cell.isascii() else cell_len(cell)
            if n > widths[i]:
                widths[i] = n
    last = columns - 1
    for row in [list(headers), *table]:
        parts = []
        for i, cell in enumerate(row):
            if i == last:
                parts.append(cell)
            else:
                n = len(cell) if cell.isascii() else cell_len(cell)
                parts.append(cell + " " * (widths[i] - n))
        yield GAP.join(parts).rstrip(" ")
