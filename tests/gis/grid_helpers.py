"""Square unit grids for the gis tests (a helper module, not a test module)."""

from __future__ import annotations

import numpy as np
import shapely

WEST, SOUTH = 113.64, 34.74
STEP = 0.001  # ~90 x 110 m unit grids


def square_grids(
    rows: int,
    cols: int,
    step: float = STEP,
    *,
    west: float = WEST,
    south: float = SOUTH,
    north: float | None = None,
    code: str = "r{row:02d}c{col:02d}",
    shuffle: int | None = None,
) -> tuple[list[str], list[shapely.Polygon]]:
    """``rows`` x ``cols`` axis-aligned lon/lat squares of ``step`` degrees, numbered west→east,
    north→south.

    The block's south-west corner is (``west``, ``south``); given ``north``, its north-west
    corner is (``west``, ``north``) instead. ``code`` is formatted with ``row``, ``col`` (from
    0) and ``number`` (from 1, in numbering order). With ``shuffle`` (a seed) the grids are
    handed over in a seeded random order.
    """
    cells = []
    for r in range(rows):
        for c in range(cols):
            x = west + c * step
            y = south + (rows - 1 - r) * step if north is None else north - (r + 1) * step
            name = code.format(row=r, col=c, number=r * cols + c + 1)
            cells.append((name, shapely.box(x, y, x + step, y + step)))
    if shuffle is not None:
        order = np.random.default_rng(shuffle).permutation(len(cells))
        cells = [cells[i] for i in order]
    return [name for name, _ in cells], [geom for _, geom in cells]
