"""A vertebral body's cross-sections on the frame grid (``[z, y, x]``, 0.5 mm pixels, rows
increasing towards anterior), for the tests of the pedicle cuts: 10 slices free of pedicles
with the body's elliptical cross-section, then 30 slices that carry them."""

from __future__ import annotations

import numpy as np

SHAPE = (40, 120, 120)
CENTRE = (60, 60)
"""The axis pixel (row, column)."""
FREE_SLICES = list(range(10))
PEDICLE_SLICES = list(range(10, 40))
ROWS, COLS = np.mgrid[: SHAPE[1], : SHAPE[2]]
BODY = ((COLS - CENTRE[1]) / 36.0) ** 2 + ((ROWS - CENTRE[0]) / 28.0) ** 2 <= 1.0
"""The body's cross-section: 36 x 28 pixel semi-axes about the axis pixel."""


def stack(pedicles: np.ndarray) -> np.ndarray:
    """``BODY`` in every slice, with ``pedicles`` (bool ``[y, x]``) added to ``PEDICLE_SLICES``."""
    body = np.zeros(SHAPE, dtype=bool)
    body[:] = BODY
    body[PEDICLE_SLICES] |= pedicles
    return body
