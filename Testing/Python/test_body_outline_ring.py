"""Whether a slice shows the body's cortical ring round marrow (``body_outline_ring``), on slices
drawn by hand on a 0.5 mm frame grid: the body's usual outline a disk of 15 mm round the axis,
a cortex 2 mm thick at 600 HU, marrow at 100 HU, read at a level of 130 HU."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.body_outline_ring import SECTORS, outline_ring, usual_outline

SPACING_MM = 0.5
SIZE = 81
CENTRE = (SIZE // 2, SIZE // 2)
LEVEL_HU = 130.0
ROWS, COLUMNS = np.mgrid[:SIZE, :SIZE]
RADIUS_MM = np.hypot(ROWS - CENTRE[0], COLUMNS - CENTRE[1]) * SPACING_MM
# Angle round the axis (degrees): 0 towards the patient's side (columns), 90 anterior (rows).
ANGLE_DEG = np.degrees(np.arctan2(ROWS - CENTRE[0], COLUMNS - CENTRE[1]))
OUTLINE = RADIUS_MM <= 15.0
RING = outline_ring(OUTLINE, CENTRE, SPACING_MM)


def _slice(gap_deg: tuple[float, float] | None = None, marrow_hu: float = 100.0) -> np.ndarray:
    """A slice (HU): the cortex round marrow at ``marrow_hu``, left out between the angles
    ``gap_deg`` (degrees)."""
    hu = np.zeros((SIZE, SIZE), dtype=np.float32)
    hu[OUTLINE] = 600.0
    hu[RADIUS_MM <= 13.0] = marrow_hu
    if gap_deg is not None:
        gap = (ANGLE_DEG >= gap_deg[0]) & (ANGLE_DEG < gap_deg[1]) & (RADIUS_MM > 13.0)
        hu[gap] = 0.0
    return hu


def test_a_whole_ring_round_marrow_rings_the_slice():
    assert RING.rings(_slice(), LEVEL_HU)


def test_a_ring_open_at_one_side_still_rings_the_slice():
    """Open over 60 degrees at the side (15 mm of cortex, wider than any closing bridges): 30 of
    the 36 sectors hold bone, and 16 of the 19 that lie in front of the axis."""
    assert RING.rings(_slice(gap_deg=(-30.0, 30.0)), LEVEL_HU)


def test_a_ring_open_over_its_front_quarter_does_not():
    """Open over the 90 degrees in front of the axis: 28 of the 36 sectors hold bone, but only 11
    of the 19 in front (under 0.8)."""
    assert not RING.rings(_slice(gap_deg=(45.0, 135.0)), LEVEL_HU)


def test_bone_only_in_front_does_not():
    """An osteophyte's arc along the front half, and a disc behind it: 19 of the 36 sectors."""
    osteophyte = _slice(gap_deg=(-180.0, 0.0), marrow_hu=80.0)
    osteophyte[RADIUS_MM <= 13.0] = 80.0
    assert not RING.rings(osteophyte, LEVEL_HU)


@pytest.mark.parametrize(("marrow_hu", "rings"), [(100.0, True), (300.0, False)], ids=["marrow", "plate"])
def test_a_plate_of_bone_is_not_a_ring(marrow_hu, rings):
    """Bone across the whole slice above the level (an endplate cut across) is a plate."""
    assert RING.rings(_slice(marrow_hu=marrow_hu), LEVEL_HU) is rings


def test_a_disc_does_not():
    assert not RING.rings(np.full((SIZE, SIZE), 80.0, dtype=np.float32), LEVEL_HU)


CEMENT_MIN_HU = 1500.0
CEMENT_RING = outline_ring(OUTLINE, CENTRE, SPACING_MM, CEMENT_MIN_HU)


def _bolus(radius_mm: float, marrow_hu: float = 100.0) -> np.ndarray:
    """The whole ring round marrow at ``marrow_hu``, a bolus of cement (2500 HU) of ``radius_mm``
    on the axis, and its blur (250 HU) 1 mm round it."""
    hu = _slice(marrow_hu=marrow_hu)
    hu[RADIUS_MM <= radius_mm + 1.0] = 250.0
    hu[RADIUS_MM <= radius_mm] = 2500.0
    return hu


def test_a_bolus_and_its_blur_are_not_marrow():
    """A bolus of 9 mm radius in the middle of the slice: with its blur, 67% of the marrow read 3 mm
    inside the outline (12 mm round the axis) lies over the level, as a plate's does. Cement and
    1.5 mm round it are not marrow: the rest, at 100 HU, is, and the slice rings. Without the
    cement level it does not."""
    hu = _bolus(9.0)
    assert np.mean(hu[CEMENT_RING.marrow] >= LEVEL_HU) > 0.5
    assert CEMENT_RING.rings(hu, LEVEL_HU)
    assert not RING.rings(hu, LEVEL_HU)


def test_a_plate_round_a_bolus_is_still_a_plate():
    """The same bolus in a plate of bone (300 HU across the slice) is no ring; nor is a bolus whose
    blur covers all of the marrow read."""
    assert not CEMENT_RING.rings(_bolus(9.0, marrow_hu=300.0), LEVEL_HU)
    assert not CEMENT_RING.rings(_bolus(11.5), LEVEL_HU)


@pytest.mark.parametrize(
    ("drawn", "plate"),
    [("plate", True), ("ring", False), ("disc", False), ("bolus in a plate", True)],
)
def test_a_plate_is_bone_across_the_body(drawn, plate):
    """Bone along the outline and over the marrow is a plate (an endplate cut across), also round
    a bolus; a ring round marrow is not, nor is a disc."""
    slices = {
        "plate": _slice(marrow_hu=300.0),
        "ring": _slice(),
        "disc": np.full((SIZE, SIZE), 80.0, dtype=np.float32),
        "bolus in a plate": _bolus(9.0, marrow_hu=300.0),
    }
    assert CEMENT_RING.plate(slices[drawn], LEVEL_HU) is plate


def test_the_level_decides_what_is_bone():
    """A faint cortex of 180 HU rings the slice at 130 HU, not at 226 HU."""
    faint = _slice()
    faint[(RADIUS_MM > 13.0) & OUTLINE] = 180.0
    assert RING.rings(faint, LEVEL_HU)
    assert not RING.rings(faint, 226.0)


def test_the_band_covers_every_sector_round_the_axis():
    assert np.unique(RING.band_sectors).size == SECTORS
    assert np.all(RING.band_rows[RING.band_in_front] >= CENTRE[0])


def test_the_usual_outline_is_what_half_the_cross_sections_hold():
    small, large = RADIUS_MM <= 10.0, RADIUS_MM <= 14.0
    assert np.array_equal(usual_outline([small, large, large]), large)
    assert np.array_equal(usual_outline([small, small, large]), small)
