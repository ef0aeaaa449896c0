"""Cement outside the vertebral body: components, volumes, locations, sides and gaps.

References: the phantom's analytic shapes (pedicle-tail cylinder and leak ellipsoid volumes,
the puncture side) and its voxel-centre truth masks; boxes built here with numpy on a 0.5 mm
grid, whose voxel counts, sides and gaps to the body are known by construction.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from scipy import ndimage

from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.leak_classes import (
    ANTERIOR,
    DISC_INFERIOR,
    DISC_SUPERIOR,
    LOCATIONS,
    PARAVERTEBRAL,
    PEDICLE_TRACT,
    SPINAL_CANAL,
)
from CementLeakageLib.leakage_components import (
    BONE_AROUND_MM,
    BONE_AROUND_NOTED_SHARE,
    CROP_MARGIN_MM,
    FRAGMENT_GAP_MM,
    describe_extravertebral_cement,
    extravertebral_components,
)
from CementLeakageLib.phantom import PhantomSpec, make_phantom

ANALYTIC_TOLERANCE = 0.10
"""Voxel-centre masks at 1 mm against the analytic solid volumes (relative)."""


@functools.cache
def phantom(side: str = "left", orientation: str = "axial"):
    return make_phantom(
        PhantomSpec(spacing_mm=(1.0, 1.0, 1.0), side=side, orientation=orientation, noise_sd_hu=0.0)
    )


def describe_phantom(p, **options):
    cement = p.cement_in_body_mask | p.extravertebral_cement_mask
    return describe_extravertebral_cement(
        p.body_mask, cement, p.ct.geometry, p.truth.upper_ras, p.truth.lower_ras, p.truth.side, **options
    )


@pytest.mark.parametrize(("side", "orientation"), [("left", "axial"), ("right", "oblique")])
def test_phantom_has_a_pedicle_tract_and_a_paravertebral_leak_of_analytic_volume(side, orientation):
    p = phantom(side, orientation)
    voxel_mm3 = p.ct.geometry.voxel_volume_mm3
    result = describe_phantom(p)
    components = result.components
    assert len(components) == 2
    assert result.ignored_count == 0 and result.outside_box_volume_cm3 == 0.0
    by_location = {c.location: c for c in components}
    assert set(by_location) == {PEDICLE_TRACT, PARAVERTEBRAL}

    tract, leak = by_location[PEDICLE_TRACT], by_location[PARAVERTEBRAL]
    assert tract.is_leakage is False and tract.suggested_yeom_type is None
    assert "not leakage" in tract.note
    assert leak.is_leakage is True and leak.suggested_yeom_type == "S"
    assert "Yeom type S" in leak.note and "confirm" in leak.note
    assert tract.side == p.truth.side and leak.side == p.truth.side

    # Every voxel of the truth mask is in exactly one component.
    total_mm3 = float(p.extravertebral_cement_mask.sum()) * voxel_mm3
    assert sum(c.volume_cm3 for c in components) * 1000.0 == pytest.approx(total_mm3, rel=1e-12)
    assert tract.volume_cm3 * 1000.0 == pytest.approx(
        p.anatomy.pedicle_tail.volume_mm3, rel=ANALYTIC_TOLERANCE
    )
    assert leak.volume_cm3 * 1000.0 == pytest.approx(p.anatomy.leak.volume_mm3, rel=ANALYTIC_TOLERANCE)

    # Ordered by volume (the leak ellipsoid is about twice the tail cylinder), indices 1..n.
    assert [c.index for c in components] == [1, 2]
    assert components[0] is leak and components[0].volume_cm3 > components[1].volume_cm3
    # Centroids: the mean RAS position of each component's voxel centres.
    for shape, component in ((p.anatomy.pedicle_tail, tract), (p.anatomy.leak, leak)):
        lower, upper = shape.bounds_ras()
        centre = 0.5 * (lower + upper)
        assert np.linalg.norm(np.asarray(component.centroid_ras) - centre) < 1.0
    # The leak is 2 mm from the body wall; the tail starts at least 0.5 mm behind it.
    assert 0.0 < leak.distance_to_body_mm <= 2.0 + 1e-9
    assert 0.0 <= tract.distance_to_body_mm <= 1.0 + 1e-9
    json.dumps(result.as_dict())


def test_phantom_components_match_scipy_labelling():
    """Voxel counts equal those of scipy's own 26-connected labelling of the truth mask."""
    p = phantom()
    labels, count = ndimage.label(p.extravertebral_cement_mask & ~p.body_mask, structure=np.ones((3, 3, 3)))
    reference = sorted(np.bincount(labels.ravel())[1:].tolist(), reverse=True)
    assert [c.voxels for c in describe_phantom(p).components] == reference
    assert count == 2


# Synthetic case: a box body x -20..20, y -15..15, z 0..25 mm on a 0.5 mm axis-aligned grid,
# endplate midpoints (0, 0, 0) and (0, 0, 25), so the vertebra frame equals RAS.
SPACING_MM = 0.5
LOW_MM = np.array([-45.0, -50.0, -20.0])
HIGH_MM = np.array([45.0, 35.0, 45.0])
LOWER_RAS = np.array([0.0, 0.0, 0.0])
UPPER_RAS = np.array([0.0, 0.0, 25.0])
BODY_BOX = ((-20.0, -15.0, 0.0), (20.0, 15.0, 25.0))

# name: (low corner, high corner) in RAS mm, expected location, side, gap to the body (mm).
BLOBS = {
    "above": ((-5, -5, 27), (5, 5, 30), DISC_SUPERIOR, "midline", 2.0),
    "below": ((0, -4, -4), (6, 4, -1), DISC_INFERIOR, "midline", 1.0),
    "canal": ((-3, -31, 8), (3, -20, 13), SPINAL_CANAL, "midline", 5.0),
    "front": ((4, 16, 10), (12, 20, 14), ANTERIOR, "right", 1.0),
    "lateral": ((23, -2, 5), (29, 4, 15), PARAVERTEBRAL, "right", 3.0),
    "tract": ((-14, -30, 10), (-10, -16, 14), PEDICLE_TRACT, "left", 1.0),
    "contralateral tract": ((10, -30, 10), (14, -16, 13), PARAVERTEBRAL, "right", 1.0),
    "deep behind": ((-14, -48, 10), (-10, -44, 14), PARAVERTEBRAL, "left", 29.0),
}
EXPECTED_YEOM = {
    DISC_SUPERIOR: "D",
    DISC_INFERIOR: "D",
    SPINAL_CANAL: "B",
    ANTERIOR: "C",
    PARAVERTEBRAL: "S",
    PEDICLE_TRACT: None,
}


def grid(spacing_mm: float = SPACING_MM, low=LOW_MM, high=HIGH_MM) -> VolumeGeometry:
    """Axis-aligned grid whose voxel faces lie on multiples of the spacing (centres in between)."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    shape_ijk = np.round((high - low) / spacing_mm).astype(int)
    return VolumeGeometry.from_origin_spacing_directions(
        low + 0.5 * spacing_mm, [spacing_mm] * 3, np.eye(3), tuple(int(n) for n in shape_ijk[::-1])
    )


def box_mask(geometry: VolumeGeometry, low, high) -> np.ndarray:
    """Voxels whose centre lies inside the RAS box ``low..high`` (mm)."""
    ijk = np.indices(geometry.shape)[::-1].reshape(3, -1).T
    centres = geometry.ijk_to_ras_points(ijk)
    inside = np.all((centres > np.asarray(low, float)) & (centres < np.asarray(high, float)), axis=1)
    return inside.reshape(geometry.shape)


def box_voxels(low, high, spacing_mm: float = SPACING_MM) -> int:
    return int(np.prod(np.round((np.asarray(high, float) - np.asarray(low, float)) / spacing_mm)))


@functools.cache
def synthetic_case():
    geometry = grid()
    body = box_mask(geometry, *BODY_BOX)
    blobs = {name: box_mask(geometry, low, high) for name, (low, high, *_) in BLOBS.items()}
    cement = box_mask(geometry, (-10, -8, 4), (10, 8, 20))  # cement inside the body
    for mask in blobs.values():
        cement |= mask
    return geometry, body, cement, blobs


@pytest.fixture(scope="module")
def synthetic_components():
    geometry, body, cement, blobs = synthetic_case()
    components = extravertebral_components(body, cement, geometry, UPPER_RAS, LOWER_RAS, "left")
    named = {}
    for name, mask in blobs.items():
        centre = geometry.voxel_centers_ras(np.nonzero(mask)).mean(axis=0)
        matches = [c for c in components if np.allclose(c.centroid_ras, centre, atol=1e-6)]
        assert len(matches) == 1, name
        named[name] = matches[0]
    return components, named


def test_synthetic_body_gives_one_component_per_blob(synthetic_components):
    components, named = synthetic_components
    assert len(components) == len(BLOBS)
    assert [c.index for c in components] == list(range(1, len(BLOBS) + 1))
    volumes = [c.volume_cm3 for c in components]
    assert volumes == sorted(volumes, reverse=True)


@pytest.mark.parametrize("name", list(BLOBS))
def test_synthetic_blob_location_side_volume_and_gap(synthetic_components, name):
    low, high, location, side, gap_mm = BLOBS[name]
    component = synthetic_components[1][name]
    assert component.location == location
    assert component.location in LOCATIONS
    assert component.side == side
    assert component.voxels == box_voxels(low, high)
    assert component.volume_cm3 == pytest.approx(box_voxels(low, high) * SPACING_MM**3 / 1000.0, rel=1e-12)
    assert component.distance_to_body_mm == pytest.approx(gap_mm, abs=SPACING_MM)
    assert component.suggested_yeom_type == EXPECTED_YEOM[location]
    assert component.is_leakage is (location != PEDICLE_TRACT)
    if location == PEDICLE_TRACT:
        assert "not leakage" in component.note
    else:
        assert f"Yeom type {EXPECTED_YEOM[location]}" in component.note and "confirm" in component.note


def test_components_are_json_ready(synthetic_components):
    for component in synthetic_components[0]:
        data = component.as_dict()
        assert json.loads(json.dumps(data)) == data
        assert all(type(v) is float for v in data["centroid_ras"])
        assert type(data["volume_cm3"]) is float and type(data["distance_to_body_mm"]) is float


def test_right_puncture_turns_the_tracts_around(synthetic_components):
    geometry, body, cement, blobs = synthetic_case()
    right = extravertebral_components(body, cement, geometry, UPPER_RAS, LOWER_RAS, "right")
    by_voxels = {c.voxels: c for c in right}
    left_tract = box_voxels(*BLOBS["tract"][:2])
    right_tract = box_voxels(*BLOBS["contralateral tract"][:2])
    assert by_voxels[left_tract].location == PARAVERTEBRAL
    assert by_voxels[right_tract].location == PEDICLE_TRACT


def test_a_lip_at_an_endplate_does_not_make_a_disc_of_the_space_below_it():
    # An osteophyte's lip in the body mask, 3 mm tall at the upper endplate and 4 mm in front of
    # the anterior wall: cement in front of the wall at mid-height lies under the lip, yet it is
    # anterior; cement on top of the lip, within 2 mm of the wall, lies over the disc.
    geometry, body, cement, blobs = synthetic_case()
    lip = box_mask(geometry, (-10, 15, 22), (10, 19, 25))
    on_top = box_mask(geometry, (-4, 15, 26), (4, 17, 28))
    components = extravertebral_components(
        body | lip, (cement & ~lip) | on_top, geometry, UPPER_RAS, LOWER_RAS, "left"
    )
    centres = {
        name: geometry.voxel_centers_ras(np.nonzero(mask)).mean(axis=0) for name, mask in blobs.items()
    }
    centres["on top of the lip"] = geometry.voxel_centers_ras(np.nonzero(on_top)).mean(axis=0)

    def location(name: str) -> str:
        (match,) = [c for c in components if np.allclose(c.centroid_ras, centres[name], atol=1e-6)]
        return match.location

    assert location("front") == ANTERIOR
    assert location("on top of the lip") == DISC_SUPERIOR
    assert location("above") == DISC_SUPERIOR and location("below") == DISC_INFERIOR


def test_tiny_component_is_ignored_but_reported():
    geometry, body, cement, _ = synthetic_case()
    tiny = box_mask(geometry, (33, 0, 10), (34, 1, 11))  # 2 x 2 x 2 voxels = 1 mm³, 4 mm from "lateral"
    result = describe_extravertebral_cement(body, cement | tiny, geometry, UPPER_RAS, LOWER_RAS, "left")
    assert len(result.components) == len(BLOBS)
    assert result.ignored_count == 1
    assert result.ignored_volume_cm3 == pytest.approx(tiny.sum() * SPACING_MM**3 / 1000.0, rel=1e-12)
    everything = float((cement | tiny)[~body].sum()) * SPACING_MM**3 / 1000.0
    listed = result.total_volume_cm3 + result.ignored_volume_cm3 + result.outside_box_volume_cm3
    assert listed == pytest.approx(everything, rel=1e-12)
    # With no minimum it is listed (0.001 cm³, the smallest).
    listed_all = extravertebral_components(
        body, cement | tiny, geometry, UPPER_RAS, LOWER_RAS, "left", min_volume_mm3=0.0
    )
    assert len(listed_all) == len(BLOBS) + 1
    assert listed_all[-1].volume_cm3 == pytest.approx(0.001, rel=1e-12)


def test_fragments_of_one_leak_within_the_gap_are_one_component():
    """Two slabs over the disc, one a millimetre higher and 1 mm to the side of the other (a thin
    leak tilted across thick slices shows so): one component holding the voxels of both, one
    segment in the labels. 2.5 mm apart, or next to a piece of another location class, they stay
    apart."""
    geometry, body, cement, blobs = synthetic_case()
    cement = cement & ~blobs["above"]
    lower = box_mask(geometry, (-6, -5, 27), (0, 5, 28))
    upper = box_mask(geometry, (1, -5, 28), (6, 5, 29))  # its voxels' boxes 1 mm from the lower's
    result = describe_extravertebral_cement(
        body, cement | lower | upper, geometry, UPPER_RAS, LOWER_RAS, "left"
    )
    (joined,) = [c for c in result.components if c.location == DISC_SUPERIOR]
    assert len(result.components) == len(BLOBS)
    assert joined.voxels == lower.sum() + upper.sum() == 12 * 20 * 2 + 10 * 20 * 2
    assert result.component_mask(joined.index, geometry.shape).sum() == joined.voxels
    assert FRAGMENT_GAP_MM == 1.5

    further = box_mask(geometry, (2.5, -5, 28), (8, 5, 29))  # 2.5 mm from the lower slab
    apart = extravertebral_components(body, cement | lower | further, geometry, UPPER_RAS, LOWER_RAS, "left")
    assert sorted(c.voxels for c in apart if c.location == DISC_SUPERIOR) == [further.sum(), lower.sum()]

    # In front (anterior) and beside it (paravertebral), 1 mm apart: two components.
    beside = box_mask(geometry, (13, 16, 10), (20, 20, 14))
    both = extravertebral_components(body, cement | beside, geometry, UPPER_RAS, LOWER_RAS, "left")
    assert len(both) == len(BLOBS)
    assert {c.location for c in both if c.voxels == beside.sum()} == {PARAVERTEBRAL}


def test_no_cement_outside_gives_an_empty_list():
    geometry, body, _, _ = synthetic_case()
    inside_only = box_mask(geometry, (-10, -8, 4), (10, 8, 20))
    assert extravertebral_components(body, inside_only, geometry, UPPER_RAS, LOWER_RAS, "left") == []
    empty = describe_extravertebral_cement(body, inside_only, geometry, UPPER_RAS, LOWER_RAS, "left")
    assert empty.ignored_count == 0 and empty.total_volume_cm3 == 0.0


def test_cement_beyond_the_box_is_reported_not_listed():
    """On a 1 mm grid reaching 70 mm beyond the body: far cement is counted outside the box."""
    geometry = grid(1.0, (-90.0, -60.0, -10.0), (90.0, 60.0, 35.0))
    body = box_mask(geometry, *BODY_BOX)
    far = box_mask(geometry, (70, -3, 5), (76, 3, 11))  # wholly beyond 20 + 40 mm
    crossing = box_mask(geometry, (-70, -3, 5), (-50, 3, 11))  # the box face is at x = -60 mm
    result = describe_extravertebral_cement(body, far | crossing, geometry, UPPER_RAS, LOWER_RAS, "right")
    assert len(result.components) == 1
    component = result.components[0]
    assert component.voxels == 10 * 6 * 6  # the part inside the box, x -60..-50
    assert "beyond" in component.note
    assert component.distance_to_body_mm == pytest.approx(30.0, abs=1.0)
    assert result.outside_box_volume_cm3 == pytest.approx((far.sum() + 10 * 6 * 6) / 1000.0, rel=1e-12)
    assert CROP_MARGIN_MM == 40.0


def test_components_carry_their_peak_and_faint_ones_say_so():
    """With the CT, each component's peak is its brightest voxel (set here by construction); the
    one whose peak stays under the cement threshold is marked faint for the reader to confirm."""
    geometry, body, cement, blobs = synthetic_case()
    array_hu = np.full(geometry.shape, 80.0)
    array_hu[cement] = 2600.0
    array_hu[blobs["above"]] = 1100.0
    k, j, i = np.argwhere(blobs["above"])[0]
    array_hu[k, j, i] = 1350.0
    k, j, i = np.argwhere(blobs["lateral"])[-1]
    array_hu[k, j, i] = 2950.0
    result = describe_extravertebral_cement(
        body, cement, geometry, UPPER_RAS, LOWER_RAS, "left", array_hu=array_hu, cement_min_hu=1500.0
    )
    peaks: dict[str, float] = {}
    for component in result.components:
        peaks[component.location] = max(peaks.get(component.location, 0.0), component.peak_hu)
    assert peaks[DISC_SUPERIOR] == 1350.0 and peaks[PARAVERTEBRAL] == 2950.0
    assert peaks[SPINAL_CANAL] == 2600.0 and peaks[DISC_INFERIOR] == 2600.0
    faint = [c for c in result.components if "faint" in c.note]
    assert [c.location for c in faint] == [DISC_SUPERIOR]
    assert "1350 HU" in faint[0].note and "under the 1500 HU cement threshold" in faint[0].note
    # Without the CT there is no peak and no faint mark.
    plain = describe_extravertebral_cement(body, cement, geometry, UPPER_RAS, LOWER_RAS, "left")
    assert all(c.peak_hu is None and "faint" not in c.note for c in plain.components)
    with pytest.raises(CementLeakageError, match="the CT has shape"):
        describe_extravertebral_cement(
            body, cement, geometry, UPPER_RAS, LOWER_RAS, "left", array_hu=array_hu[1:]
        )


def test_a_leak_in_a_concave_posterior_wall_is_in_the_canal():
    """A real body's posterior wall is concave, and cement from the basivertebral foramen lies in
    its hollow, in front of the body's rearmost voxels: it is judged against the wall where it
    lies. The same leak behind a flat wall, and one beside the hollow's edge, are judged as
    before."""
    geometry = grid()
    body = box_mask(geometry, *BODY_BOX) & ~box_mask(geometry, (-8, -16, -1), (8, -11, 26))  # 4 mm hollow
    cement = box_mask(geometry, (-10, -8, 4), (10, 8, 20))
    in_hollow = box_mask(geometry, (-2, -14, 8), (2, -12, 13))  # 1 mm behind the hollow's floor
    behind_a_flank = box_mask(geometry, (12, -19, 8), (15, -16, 13))  # lateral 13.5 mm of 20
    components = extravertebral_components(
        body, cement | in_hollow | behind_a_flank, geometry, UPPER_RAS, LOWER_RAS, "left"
    )
    by_x = {round(c.centroid_ras[0]): c.location for c in components}
    assert by_x == {0: SPINAL_CANAL, 14: PARAVERTEBRAL}


def _bone_share_by_tree(geometry, blob, body, array_hu, bone_min_hu):
    """The share of bone around ``blob`` counted voxel by voxel with a k-d tree of its centres."""
    from scipy.spatial import cKDTree

    tree = cKDTree(geometry.voxel_centers_ras(np.nonzero(blob)))
    candidates = ndimage.binary_dilation(
        blob, np.ones((3, 3, 3), bool), iterations=int(np.ceil(BONE_AROUND_MM[1] / SPACING_MM)) + 1
    )
    kji = np.nonzero(candidates & ~body)
    distance, _ = tree.query(geometry.voxel_centers_ras(kji))
    around = (distance >= BONE_AROUND_MM[0] - 1e-9) & (distance <= BONE_AROUND_MM[1] + 1e-9)
    return float(np.mean(array_hu[kji][around] >= bone_min_hu))


def test_a_component_in_bone_is_noted_as_possibly_dense_cortex():
    """Cement-bright voxels inside a plate of bone (a lamina's dense cortex) are noted as lying in
    bone, with the share of bone around them; leaks in soft tissue are not, nor a leak into the
    disc or the tract's cement, whatever lies around them."""
    geometry, body, cement, blobs = synthetic_case()
    array_hu = np.full(geometry.shape, 40.0)
    lamina = box_mask(geometry, (-22, -50, 4), (-2, -40, 20))
    array_hu[lamina] = 400.0
    array_hu[box_mask(geometry, (-15, -12, 29), (15, 12, 40))] = 400.0  # the next vertebra, over the disc
    array_hu[cement] = 2600.0
    result = describe_extravertebral_cement(
        body, cement, geometry, UPPER_RAS, LOWER_RAS, "left", array_hu=array_hu, bone_min_hu=226.0
    )
    by_centre = {}
    for name, blob in blobs.items():
        centre = geometry.voxel_centers_ras(np.nonzero(blob)).mean(axis=0)
        by_centre[name] = next(c for c in result.components if np.allclose(c.centroid_ras, centre, atol=1e-6))
        expected = _bone_share_by_tree(geometry, blob, body, array_hu, 226.0)
        assert by_centre[name].bone_around_share == pytest.approx(expected, abs=1e-12), name
    deep = by_centre["deep behind"]
    assert deep.bone_around_share > 0.9 and deep.is_leakage
    assert "lies in bone" in deep.note and "dense cortical bone" in deep.note
    assert f"{100 * deep.bone_around_share:.0f}% of what surrounds it" in deep.note
    assert by_centre["above"].bone_around_share >= BONE_AROUND_NOTED_SHARE  # the next vertebra
    noted = sorted(name for name, c in by_centre.items() if "lies in bone" in c.note)
    assert noted == ["deep behind"]
    for name in ("canal", "front", "lateral"):
        assert by_centre[name].bone_around_share == 0.0
    plain = describe_extravertebral_cement(body, cement, geometry, UPPER_RAS, LOWER_RAS, "left")
    assert all(c.bone_around_share is None for c in plain.components)


def test_bad_input_is_refused():
    geometry, body, cement, _ = synthetic_case()
    with pytest.raises(CementLeakageError, match="body mask is empty"):
        extravertebral_components(np.zeros_like(body), cement, geometry, UPPER_RAS, LOWER_RAS, "left")
    with pytest.raises(CementLeakageError, match="shape"):
        extravertebral_components(body, cement[1:], geometry, UPPER_RAS, LOWER_RAS, "left")
    with pytest.raises(CementLeakageError, match="side"):
        extravertebral_components(body, cement, geometry, UPPER_RAS, LOWER_RAS, "up")
    with pytest.raises(CementLeakageError, match="min_volume_mm3"):
        extravertebral_components(body, cement, geometry, UPPER_RAS, LOWER_RAS, "left", min_volume_mm3=-1)
