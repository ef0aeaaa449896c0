"""The cortex's outer-surface level is measured on the body's own cortex, in front of the axis
(frame grid, 0.5 mm pixels, rows increasing towards anterior).

Synthetic stack: an elliptical body with a faint 1 mm cortex (300 HU, osteoporotic) around
trabecular bone (110 HU) in soft tissue (40 HU), and, behind the axis, pedicles of dense bone
(750 HU) joining its posterolateral wall; every slice blurred in plane (sigma 0.6 mm), with
noise (SD 20 HU).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from CementLeakageLib import cortex_edge
from CementLeakageLib.cortex_edge import CortexEdgeReading, read_outer_edge, trim_outer_edge

SHAPE = (8, 120, 120)
CENTRE = (60, 60)
PIXEL_MM = 0.5
BAND_PX = 3
NOISE_SD_HU = 20.0
ROWS, COLS = np.mgrid[: SHAPE[1], : SHAPE[2]]


def ellipse(half_x: float, half_y: float) -> np.ndarray:
    return ((COLS - CENTRE[1]) / half_x) ** 2 + ((ROWS - CENTRE[0]) / half_y) ** 2 <= 1.0


BODY = ellipse(36.0, 28.0)
CORTEX = BODY & ~ellipse(34.0, 26.0)
PEDICLES = (
    (ROWS >= 12)
    & (ROWS < CENTRE[0])
    & (np.abs(np.abs(COLS - CENTRE[1]) - 16 - 0.5 * (CENTRE[0] - ROWS)) <= 6)
    & ~BODY
)
"""Two bars of dense bone, 6.5 mm wide, running back and out from the posterolateral wall."""


def blurred_slice(cortex_hu: float, pedicles: bool) -> np.ndarray:
    """One slice's HU, blurred and noise-free."""
    image = np.where(BODY, 110.0, 40.0)
    image[CORTEX] = cortex_hu
    if pedicles:
        image[PEDICLES] = 750.0
    return ndimage.gaussian_filter(image, 0.6 / PIXEL_MM)


def stack(cortex_hu: float, pedicles: bool) -> tuple[np.ndarray, np.ndarray]:
    """The body mask and its blurred HU."""
    noise = np.random.default_rng(7).normal(0.0, NOISE_SD_HU, SHAPE)
    hu = (blurred_slice(cortex_hu, pedicles)[None] + noise).astype(np.float32)
    return np.broadcast_to(BODY, SHAPE).copy(), hu


def surface_hu(cortex_hu: float) -> float:
    """The blurred intensity (noise-free, HU) on the body's outer surface in front of the axis: on
    the columns within 10 px of it, half a pixel past the last body row, by cubic spline."""
    columns = np.arange(CENTRE[1] - 10, CENTRE[1] + 11)
    rows = [np.flatnonzero(BODY[:, column]).max() + 0.5 for column in columns]
    clean = blurred_slice(cortex_hu, pedicles=True)
    return float(np.mean(ndimage.map_coordinates(clean, [rows, columns], order=3)))


def reading(cortex_hu: float, pedicles: bool, axis_row: int | None) -> CortexEdgeReading:
    body, hu = stack(cortex_hu, pedicles)
    value = read_outer_edge(hu, body, list(range(SHAPE[0])), BAND_PX, axis_row=axis_row)
    assert value is not None
    return value


def level(cortex_hu: float, pedicles: bool, axis_row: int | None) -> float:
    return reading(cortex_hu, pedicles, axis_row).level()


def test_dense_pedicles_behind_the_axis_do_not_set_a_faint_cortex_s_level():
    own = level(300.0, pedicles=False, axis_row=CENTRE[0])
    assert level(300.0, pedicles=True, axis_row=CENTRE[0]) == own
    # Sampled all round, the pedicles' steep flanks raise it (as they did before the axis row).
    assert level(300.0, pedicles=True, axis_row=None) > own + 8.0
    assert abs(level(300.0, pedicles=False, axis_row=None) - own) < 2.0


def test_the_level_lies_between_the_tissue_outside_and_the_blurred_cortex():
    for cortex_hu in (300.0, 750.0):
        body, hu = stack(cortex_hu, pedicles=True)
        peak = float(hu[0][CORTEX & (ROWS >= CENTRE[0])].max())
        value = level(cortex_hu, pedicles=True, axis_row=CENTRE[0])
        assert 40.0 < value < peak


def test_a_dense_cortex_level_is_the_same_in_front_as_all_round():
    own = level(750.0, pedicles=False, axis_row=None)
    assert abs(level(750.0, pedicles=True, axis_row=CENTRE[0]) - own) < 2.0


def test_a_faint_cortex_outline_is_moved_to_its_surface():
    """The outline level of a 300 HU cortex (its edge level under the 226 HU bone threshold) lies
    within 2 HU of the blurred intensity on its surface (159.7 HU), where the edge level read 0.4
    of the way from the flank's inflection to its peak lies 5.8 HU above it; a 750 HU cortex keeps
    that level for its outline, 4.1 HU under its surface's 360.8 HU."""
    faint = reading(300.0, pedicles=True, axis_row=CENTRE[0])
    assert faint.level() <= 226.0
    assert abs(faint.outline_level(226.0) - surface_hu(300.0)) < 2.0
    assert faint.level() - surface_hu(300.0) > 5.0
    dense = reading(750.0, pedicles=True, axis_row=CENTRE[0])
    assert dense.outline_level(226.0) == dense.level()
    assert abs(dense.level() - surface_hu(750.0)) < 5.0


def test_the_edge_is_read_and_trimmed_as_on_the_whole_cross_section(monkeypatch):
    """The edge is read and trimmed within ``EDGE_WORK_MARGIN_PX`` of the body: in a frame 40 px
    wider on every side, with cement 30 px beyond that margin and cement 6 px in front of the mask,
    the reading and the trimmed mask are exactly those of the whole cross-section (the margin set
    wider than the frame)."""
    pad = 40
    body, hu = stack(300.0, pedicles=True)
    grown = ndimage.binary_dilation(body, structure=np.ones((1, 5, 5), dtype=bool))
    mask = np.pad(grown, ((0, 0), (pad, pad), (pad, pad)))
    noise = np.random.default_rng(11).normal(0.0, NOISE_SD_HU, mask.shape).astype(np.float32)
    frame_hu = np.pad(hu, ((0, 0), (pad, pad), (pad, pad)), constant_values=40.0)
    frame_hu[:, :, : pad - 2] += noise[:, :, : pad - 2]
    frame_hu[:, 2:12, 60:140] = 1800.0
    # Cement 6 px in front of the mask, whose blurred rim the reading leaves out.
    front = pad + CENTRE[0] + 28 + 2 + 6
    frame_hu[:, front : front + 3, pad + 50 : pad + 70] = 1800.0
    centre = (CENTRE[0] + pad, CENTRE[1] + pad)
    slices = list(range(SHAPE[0]))

    def read_and_trim() -> tuple[CortexEdgeReading, np.ndarray]:
        value = read_outer_edge(frame_hu, mask, slices, BAND_PX, axis_row=centre[0])
        assert value is not None
        trimmed = mask.copy()
        trim_outer_edge(frame_hu, trimmed, slices, value.outline_level(226.0), BAND_PX, centre)
        return value, trimmed

    near, near_trimmed = read_and_trim()
    monkeypatch.setattr(cortex_edge, "EDGE_WORK_MARGIN_PX", 10 * mask.shape[1])
    whole, whole_trimmed = read_and_trim()
    assert near == whole
    assert np.array_equal(near_trimmed, whole_trimmed)
    assert (mask & ~near_trimmed).sum() > 1000
