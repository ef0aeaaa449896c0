"""Body segmentation on a real lumbar vertebra (VerSe subject 004, L2) with expert labels, read
as a CT as :mod:`real_vertebra` states."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from real_vertebra import endplate_midpoints, load_real_vertebra

from CementLeakageLib.body_segmentation import segment_vertebral_body
from CementLeakageLib.ct_volume import CtVolume
from CementLeakageLib.sitk_bridge import geometry_of, to_sitk


def _measured(ct, truth, upper, lower, follow_surfaces):
    result = segment_vertebral_body(ct, upper, lower, follow_surfaces=follow_surfaces)
    mask = np.zeros(truth.shape, dtype=bool)
    mask[result.box] = result.mask
    dice = 2.0 * np.count_nonzero(mask & truth) / (np.count_nonzero(mask) + np.count_nonzero(truth))
    return result, mask, dice


def _beyond_points(geometry, truth, upper, lower):
    """The slices beyond the marked points (the points lie on the faces between slices)."""
    lower_k, upper_k = geometry.ras_to_ijk_points(np.array([lower, upper]))[:, 2]
    beyond = np.zeros(truth.shape, dtype=bool)
    beyond[: int(round(lower_k + 0.5))] = True
    beyond[int(round(upper_k + 0.5)) :] = True
    return beyond


def _one_point_marked_at(end: str, fraction: float):
    """The real L2, its labelled body, and its endplate points (RAS mm) with the ``end`` one
    ("lower" or "upper") marked at ``fraction`` of the way from the lower point to the upper."""
    ct, labels = load_real_vertebra()
    truth = np.isin(labels, [1, 2])
    upper, lower = endplate_midpoints(ct.geometry, truth)
    marked = lower + fraction * (upper - lower)
    if end == "upper":
        return ct, truth, marked, lower
    return ct, truth, upper, marked


def test_real_vertebral_body_matches_expert_labels():
    """With the points as marked (the endplate surfaces not read from the CT)."""
    ct, labels = load_real_vertebra()
    truth = np.isin(labels, [1, 2])
    posterior_elements = np.isin(labels, [3, 4])
    upper, lower = endplate_midpoints(ct.geometry, truth)
    assert upper[1] > lower[1] - 5 and upper[2] > lower[2]  # anatomy reads as RAS after the flip

    _, mask, dice = _measured(ct, truth, upper, lower, follow_surfaces=False)
    # Measured 0.913 (0.897 while a rim had to leave the outline's core, eroded by 3 mm, free:
    # these shallow dishes' rims cover 9-22% of it). The rest of the loss is the part of the
    # rims under 226 HU and the labels' outermost layer of voxels.
    assert dice >= 0.90
    # The pedicles and the posterior arch are cut off: under 1% of the mask lies in them.
    assert np.count_nonzero(mask & posterior_elements) <= 0.01 * np.count_nonzero(mask)
    volume_ratio = np.count_nonzero(mask) / np.count_nonzero(truth)
    assert volume_ratio == pytest.approx(0.850, abs=0.03)  # measured 0.846 (0.821 before)
    # The rims beyond the marked points: 1038 voxels of the labels' 2662 there, 2 outside them.
    beyond = _beyond_points(ct.geometry, truth, upper, lower)
    assert np.count_nonzero(beyond & truth) == 2662
    assert np.count_nonzero(mask & beyond & truth) >= 900
    assert np.count_nonzero(mask & beyond & ~truth) <= 20


def test_real_upper_point_in_a_one_voxel_pit_is_moved_to_the_endplate_around_it():
    """The labels' central column ends one voxel below the columns around it: the point placed
    on its end lies in a pit one voxel wide. Within 3 mm of the axis the CT's upper endplate
    surface lies 0.7 mm beyond it (the columns 0.6-3 mm from the axis read +0.67 to +0.74 mm,
    the central one -0.09 mm), so the point is moved there; the lower point, 0.3 mm out in the
    disc by the CT, is within the tolerance and kept. Against the points as marked, the mask
    gains 358 voxels of the labels and 182 outside them: Dice 0.913 -> 0.916."""
    ct, labels = load_real_vertebra()
    truth = np.isin(labels, [1, 2])
    posterior_elements = np.isin(labels, [3, 4])
    upper, lower = endplate_midpoints(ct.geometry, truth)

    result, mask, dice = _measured(ct, truth, upper, lower, follow_surfaces=True)

    assert [text[:52] for text in result.warnings] == ["the upper endplate point lies 0.7 mm inside the body"]
    assert dice >= 0.91
    assert np.count_nonzero(mask & posterior_elements) <= 0.01 * np.count_nonzero(mask)
    assert np.count_nonzero(mask) / np.count_nonzero(truth) == pytest.approx(0.867, abs=0.03)
    beyond = _beyond_points(ct.geometry, truth, upper, lower)
    assert np.count_nonzero(mask & beyond & truth) >= 1400  # measured 1632
    assert np.count_nonzero(mask & beyond & ~truth) <= 250  # measured 181


def test_real_upper_point_marked_halfway_up_is_named():
    """The upper point halfway between the endplates, in the marrow: the closed cortical ring goes
    on past it (but for two lone slices the faint shell leaves open) to the edge of the search.
    A warning names the upper point, and it is not moved: within 3 mm of it the marrow crosses
    the cortex's edge level, which read as a surface 1.7 mm short of it and moved it further in.
    The mask then holds 42% of the labelled body (measured 14175 of 33646 voxels)."""
    ct, labels = load_real_vertebra()
    truth = np.isin(labels, [1, 2])
    upper, lower = endplate_midpoints(ct.geometry, truth)

    result, mask, _ = _measured(ct, truth, 0.5 * (upper + lower), lower, follow_surfaces=True)

    assert [text[:77] for text in result.warnings] == [
        "the vertebral body goes on for 8.0 mm or more beyond the upper endplate point"
    ]
    assert np.count_nonzero(mask & truth) / np.count_nonzero(truth) == pytest.approx(0.42, abs=0.03)


@pytest.mark.parametrize(
    ("end", "fraction", "inside_mm"),
    [
        ("upper", 0.85, 4.5),
        ("upper", 0.70, 8.2),
        ("lower", 0.15, 3.5),
        ("lower", 0.30, 7.1),
        ("lower", 0.35, 8.4),
    ],
    ids=["upper-at-85%", "upper-at-70%", "lower-at-15%", "lower-at-30%", "lower-at-35%"],
)
def test_real_point_marked_inside_the_body_is_moved_onto_its_endplate(end, fraction, inside_mm):
    """One point 3.75-7.5 mm inside the body (at ``fraction`` of the 25 mm between the
    endplates). Beyond it the faint shell leaves the ring open in up to two slices in a row (1 mm)
    before it closes again, next to the point or further out, and the endplate's plate lies up to
    1.9 mm past the last slice that holds part of the body: the surface search goes past both,
    and the point is moved onto the surface. Before, the body's reach and the search ended at the
    first gap and 1-2 mm past the last slice, and each point was kept where marked with no
    warning: Dice 0.818, 0.729, 0.823 and 0.733. Now the masks match the ones with the points on
    the endplates (Dice 0.916, 0.916, 0.918 and 0.919; 0.916 there). The lower point at 35%
    (8.75 mm inside) was read 1.1 mm out in the disc, on a surface in the marrow, as the closed
    rings beyond it ended within a millimetre (Dice 0.734); read as rings round marrow, the body
    goes on 7 mm past it and the point is moved onto its endplate (Dice 0.919)."""
    ct, truth, upper, lower = _one_point_marked_at(end, fraction)

    result, mask, dice = _measured(ct, truth, upper, lower, follow_surfaces=True)

    moved = [text for text in result.warnings if text.startswith(f"the {end} endplate point lies")]
    assert len(moved) == 1
    assert float(moved[0].split(" lies ")[1].split(" mm")[0]) == pytest.approx(inside_mm, abs=0.3)
    assert dice >= 0.91
    assert np.count_nonzero(mask & truth) / np.count_nonzero(truth) == pytest.approx(0.853, abs=0.03)


@pytest.mark.parametrize(
    ("end", "fraction", "named", "covered"),
    [
        (
            "lower",
            0.40,
            "the vertebral body goes on for 8.6 mm or more beyond the lower endplate point",
            0.594,
        ),
        ("lower", 0.45, "the lower endplate point was kept where it was marked", 0.555),
        (
            "lower",
            0.50,
            "the vertebral body goes on for 8.6 mm or more beyond the lower endplate point",
            0.491,
        ),
        (
            "upper",
            0.60,
            "the vertebral body goes on for 9.0 mm or more beyond the upper endplate point",
            0.500,
        ),
    ],
    ids=["lower-at-40%", "lower-at-45%", "lower-at-50%", "upper-at-60%"],
)
def test_real_point_marked_deep_inside_the_body_is_named(end, fraction, named, covered):
    """One point 10-12.5 mm inside the body. The faint shell leaves the ring open in up to three
    slices in a row beyond it, and closes it round less than 70% of the body's usual area in
    others, so the closed rings alone stopped short of the end of the search, and these four
    were measured with nothing said (Dice 0.735, 0.739, 0.652, 0.665). Its cortex still runs
    round 83-89% of the outline there, round marrow: read as rings, the body goes on past the
    point out to the end of the search, or deeper than any dish, and the point is named. At 45%,
    a surface read 1.5 mm beyond the point in the marrow proves wrong (the body goes on 8.5 mm
    past the point moved there), and the point is kept and named. The mask holds what lies
    between the points. Between the upper point at 60% and the lower one the cross-sections lean
    13 degrees front to back; segmented along that lean the mask held 44% of the body: a lean read
    where a point lies inside the body is named, not followed."""
    ct, truth, upper, lower = _one_point_marked_at(end, fraction)

    result, mask, _ = _measured(ct, truth, upper, lower, follow_surfaces=True)

    assert any(text.startswith(named) for text in result.warnings)
    assert not any(text.startswith(f"the {end} endplate point lies") for text in result.warnings)
    assert np.count_nonzero(mask & truth) / np.count_nonzero(truth) == pytest.approx(covered, abs=0.03)


def _averaged_into_thick_slices(ct: CtVolume, slice_mm: float, start: float) -> CtVolume:
    """The real L2 as a CT with ``slice_mm`` (mm) slices: each the mean over its extent along k of
    the 1 mm CT, linearly interpolated (0.1 mm steps), the first starting ``start`` of a slice
    from the first 1 mm slice's centre; same rows, columns and direction."""
    image = to_sitk(ct.array_hu, ct.geometry)
    step_mm = 0.1
    along_mm = np.arange(0.0, (ct.array_hu.shape[0] - 1) * ct.geometry.spacing_mm[2] + 1e-9, step_mm)
    k = along_mm / ct.geometry.spacing_mm[2]
    below = np.floor(k).astype(int)
    above = np.minimum(below + 1, ct.array_hu.shape[0] - 1)
    weight = (k - below)[:, None, None]
    fine = ct.array_hu[below] * (1.0 - weight) + ct.array_hu[above] * weight
    per_slice = int(round(slice_mm / step_mm))
    sums = np.concatenate([np.zeros((1,) + fine.shape[1:]), np.cumsum(fine, axis=0)])
    starts = np.arange(int(round(start * per_slice)), fine.shape[0] - per_slice + 1, per_slice)
    thick = ((sums[starts + per_slice] - sums[starts]) / per_slice).astype(np.float32)
    first_k = (starts[0] + 0.5 * (per_slice - 1)) * step_mm / ct.geometry.spacing_mm[2]
    out = sitk.GetImageFromArray(thick)
    out.SetSpacing((*ct.geometry.spacing_mm[:2], slice_mm))
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, float(first_k))))
    return CtVolume(thick, geometry_of(out), source="verse004 L2, thick slices")


def _surface_named(warnings: list[str]) -> list[str]:
    return [text for text in warnings if "endplate's surface reads" in text]


@pytest.mark.parametrize("slice_mm", [1.5, 2.0])
def test_real_points_on_their_endplates_are_not_named_on_thick_slices(slice_mm):
    """The real L2 averaged into 1.5 mm and 2 mm slices, the slices started at five positions
    each: with the points on the labels' endplates no point is named inside the body from its
    surface. The faint real endplate, averaged over a thick slice, mostly stays under the
    cortex's edge level near the axis: the upper surface is read on one of the ten CTs (0.45 mm
    beyond the point, where 1 mm slices put it 0.7 mm beyond), the lower one 0.4-0.8 mm short of
    the point on four. On 1.25 mm slices one position of five reads the upper surface 2.5 mm
    beyond the point, and names it."""
    ct, labels = load_real_vertebra()
    upper, lower = endplate_midpoints(ct.geometry, np.isin(labels, [1, 2]))

    for start in np.linspace(0.0, 1.0, 5, endpoint=False):
        thick = _averaged_into_thick_slices(ct, slice_mm, start)
        result = segment_vertebral_body(thick, upper, lower)
        assert _surface_named(result.warnings) == []


@pytest.mark.parametrize(("start", "read_mm"), [(0.2, 1.57), (0.4, 1.2)])
def test_real_point_2_mm_inside_on_2_mm_slices_is_named_where_its_surface_is_read(start, read_mm):
    """The lower point 2 mm inside the body on 2 mm slices, on the two of five slice positions
    where the real lower endplate is read near the axis: its surface reads 1.2-1.6 mm beyond the
    point, past half a slice, and the point is named. The reading moves with the point (0.58 and
    0.20 mm with the point 1 mm inside, not named); on the other three positions nothing is read
    near the axis, and nothing said."""
    ct, labels = load_real_vertebra()
    upper, lower = endplate_midpoints(ct.geometry, np.isin(labels, [1, 2]))
    axis = (upper - lower) / np.linalg.norm(upper - lower)
    thick = _averaged_into_thick_slices(ct, 2.0, start)

    result = segment_vertebral_body(thick, upper, lower + 2.0 * axis)

    named = _surface_named(result.warnings)
    assert len(named) == 1 and named[0].startswith("the lower endplate's surface reads")
    assert float(named[0].split(" reads ")[1].split(" mm")[0]) == pytest.approx(read_mm, abs=0.1)
