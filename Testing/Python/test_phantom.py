"""The synthetic postoperative CT: its analytic truth, truth masks, grids and intensities.

Every figure is checked against an independent reference: stratified Monte Carlo integration
of the phantom's implicit shapes, inequalities written out here, hand-placed RAS points, or
connected components computed by SimpleITK.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import SimpleITK as sitk

from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.phantom import PhantomSpec, make_phantom, shape_mask
from CementLeakageLib.phantom_shapes import Cylinder, Ellipsoid
from CementLeakageLib.split_plane import split_plane_from_endplates

CUTOFF_PCT = 13.68
ORIENTATIONS = ("axial", "lps", "flipped", "oblique")


@functools.cache
def phantom(orientation="axial", preset="high", side="left", spacing=(0.8, 0.8, 1.0), **options):
    return make_phantom(
        PhantomSpec(orientation=orientation, cement_preset=preset, side=side, spacing_mm=spacing, **options)
    )


def stratified_volume_mm3(inside, lower, upper, cells_per_axis=160, seed=0):
    """Volume (mm³) of ``{p : inside(p)}`` in a box: one uniform random point in each of n³ cells."""
    rng = np.random.default_rng(seed)
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    size = (upper - lower) / cells_per_axis
    rows, columns = np.meshgrid(np.arange(cells_per_axis), np.arange(cells_per_axis), indexing="ij")
    rows, columns = rows.ravel(), columns.ravel()
    hits = 0
    for slab in range(cells_per_axis):
        points = np.empty((rows.size, 3))
        points[:, 0] = lower[0] + (rows + rng.random(rows.size)) * size[0]
        points[:, 1] = lower[1] + (columns + rng.random(rows.size)) * size[1]
        points[:, 2] = lower[2] + (slab + rng.random(rows.size)) * size[2]
        hits += int(np.count_nonzero(inside(points)))
    return hits / cells_per_axis**3 * float(np.prod(upper - lower))


def union_bounds(shapes):
    lows, highs = zip(*(shape.bounds_ras() for shape in shapes))
    return np.min(lows, axis=0), np.max(highs, axis=0)


def inside_any(shapes):
    return lambda points: np.any([shape.contains_points(points) for shape in shapes], axis=0)


def nearest_voxel_hu(ct, point_ras, half_width=0):
    """HU values of the voxel nearest an RAS point (mm) and its neighbours within ``half_width``."""
    i, j, k = np.round(ct.geometry.ras_to_ijk_points(point_ras)[0]).astype(int)
    w = half_width
    return ct.array_hu[k - w : k + w + 1, j - w : j + w + 1, i - w : i + w + 1]


# --- closed-form truth against integration of the same shapes -------------------------------------


@pytest.mark.parametrize("preset", ["high", "low"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_closed_form_truth_equals_monte_carlo_integration_within_0_25_percent(preset, side):
    result = phantom(preset=preset, side=side)
    truth, anatomy = result.truth, result.anatomy
    body = anatomy.target.body
    vbv = stratified_volume_mm3(body.contains_points, *body.bounds_ras())
    blobs = anatomy.cement_blobs
    in_blob = inside_any(blobs)
    bcv = stratified_volume_mm3(in_blob, *union_bounds(blobs), seed=1)
    plane = split_plane_from_endplates(truth.upper_ras, truth.lower_ras, side)
    psbcv = stratified_volume_mm3(
        lambda p: in_blob(p) & (plane.signed_distance_mm(p) > 0), *union_bounds(blobs), seed=2
    )
    extra = anatomy.extravertebral_cement
    extravertebral = stratified_volume_mm3(inside_any(extra), *union_bounds(extra), seed=3)

    assert truth.vbv_cm3 == pytest.approx(vbv / 1000.0, rel=0.0025)
    assert truth.bcv_cm3 == pytest.approx(bcv / 1000.0, rel=0.0025)
    assert truth.psbcv_cm3 == pytest.approx(psbcv / 1000.0, rel=0.0025)
    assert truth.extravertebral_cement_cm3 == pytest.approx(extravertebral / 1000.0, rel=0.0025)
    assert truth.bcv_vbv_pct == pytest.approx(100.0 * truth.bcv_cm3 / truth.vbv_cm3, rel=1e-12)
    assert truth.psbcv_vbv_pct == pytest.approx(100.0 * truth.psbcv_cm3 / truth.vbv_cm3, rel=1e-12)
    assert truth.exceeds_cutoff == (truth.psbcv_vbv_pct > CUTOFF_PCT)


def test_default_phantom_truth_is_the_elliptic_cylinder_and_endplate_face_centres():
    truth = phantom().truth
    assert truth.vbv_cm3 == pytest.approx(np.pi * 20.0 * 15.0 * 25.0 / 1000.0, rel=1e-12)
    assert truth.upper_ras == pytest.approx(truth.body_centre_ras + [0.0, 0.0, 12.5], abs=1e-12)
    assert truth.lower_ras == pytest.approx(truth.body_centre_ras - [0.0, 0.0, 12.5], abs=1e-12)
    assert (truth.level, truth.side) == ("L1", "left")


@pytest.mark.parametrize("side", ["left", "right"])
def test_presets_fall_on_opposite_sides_of_the_cutoff_by_at_least_4_points(side):
    high, low = phantom(preset="high", side=side), phantom(preset="low", side=side)
    assert high.truth.psbcv_vbv_pct >= CUTOFF_PCT + 4.0 and high.truth.exceeds_cutoff
    assert low.truth.psbcv_vbv_pct <= CUTOFF_PCT - 4.0 and not low.truth.exceeds_cutoff
    # The voxelised truth masks stay on the same sides, by at least 3.5 points.
    for result, above in ((high, True), (low, False)):
        g = result.ct.geometry
        sign = -1.0 if side == "left" else 1.0
        cement = np.nonzero(result.cement_in_body_mask)
        on_side = sign * (g.voxel_centers_ras(cement)[:, 0] - result.truth.body_centre_ras[0]) > 0
        pct = 100.0 * np.count_nonzero(on_side) / np.count_nonzero(result.body_mask)
        assert (pct - CUTOFF_PCT >= 3.5) if above else (CUTOFF_PCT - pct >= 3.5)


# --- geometry of the cement ---------------------------------------------------------------------------


def ellipse_polygon(a, b, n=8000):
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([a * np.cos(angles), b * np.sin(angles)], axis=1)


def ellipsoid_surface(blob, n=30):
    theta, phi = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n, endpoint=False))
    unit = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)
    return (unit.reshape(-1, 3) * blob.semi_axes_mm) + blob.centre_ras


def min_distance_2d(points_xy, polygon):
    best = np.inf
    for start in range(0, len(points_xy), 200):
        difference = points_xy[start : start + 200, None, :] - polygon[None]
        best = min(best, float(np.sqrt((difference**2).sum(axis=2)).min()))
    return best


@pytest.mark.parametrize("preset", ["high", "low"])
def test_blobs_lie_inside_the_trabecular_region_with_1_5_mm_clearance(preset):
    anatomy = phantom(preset=preset).anatomy
    trabecular = anatomy.target.trabecular
    (a, b), centre = trabecular.semi_axes_mm, np.asarray(trabecular.centre_ras)
    polygon = ellipse_polygon(a, b)
    for blob in anatomy.cement_blobs:
        surface = ellipsoid_surface(blob) - centre
        assert np.all((surface[:, 0] / a) ** 2 + (surface[:, 1] / b) ** 2 < 1.0)
        assert min_distance_2d(surface[:, :2], polygon) >= 1.5 - 1e-3
        assert 0.5 * trabecular.height_mm - np.abs(surface[:, 2]).max() >= 1.5 - 1e-9
    blobs = anatomy.cement_blobs
    for n, first in enumerate(blobs):
        for second in blobs[n + 1 :]:
            assert not np.any(second.contains_points(ellipsoid_surface(first)))


def test_pedicle_tail_and_leak_lie_wholly_outside_the_body():
    anatomy = phantom().anatomy
    body = anatomy.target.body
    (a, b), centre = body.semi_axes_mm, np.asarray(body.centre_ras)
    polygon = ellipse_polygon(a, b)
    tail, leak = anatomy.pedicle_tail, anatomy.leak
    for points, gap_mm in (
        (tail.surface_points_ras() - centre, 0.5),
        (ellipsoid_surface(leak) - centre, 1.0),
    ):
        assert np.all((points[:, 0] / a) ** 2 + (points[:, 1] / b) ** 2 > 1.0)
        assert min_distance_2d(points[:, :2], polygon) >= gap_mm
    # The tail runs along the puncture-side pedicle (towards -R for a left puncture), behind the body.
    anterior, posterior = anatomy.target.pedicle_axes_ras["left"]
    assert tail.start_ras[0] < centre[0] and tail.start_ras[1] < centre[1] - 0.5 * b
    axis = (posterior - anterior) / np.linalg.norm(posterior - anterior)
    assert tail.axis_ras == pytest.approx(axis, abs=1e-9)


# --- truth masks on the voxel grid -----------------------------------------------------------------


GRID_SPACING_MM = {
    "axial": (0.8, 0.8, 1.0),
    "lps": (0.7, 0.9, 1.3),
    "flipped": (0.8, 0.8, 1.0),
    "oblique": (0.8, 0.8, 1.0),
}
"""Voxel sizes (i, j, k) per grid: the LPS-stored grid is anisotropic with thick slices."""


def grid_case(orientation):
    return phantom(orientation=orientation, spacing=GRID_SPACING_MM[orientation])


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_truth_masks_times_voxel_volume_match_the_analytic_volumes(orientation):
    """Body within 1%, cement in the body within 1.5%, extravertebral cement (0.46 cm³) within 5%.

    On the grid with 1.3 mm slices parallel to the flat endplates the body may gain or lose one
    slice of voxel centres: tolerance 1.3 / 25 (5.2%) there.
    """
    result = grid_case(orientation)
    voxel_cm3 = result.ct.geometry.voxel_volume_mm3 / 1000.0
    truth = result.truth
    slice_mm = GRID_SPACING_MM[orientation][2]
    body_tolerance = 0.01 if slice_mm <= 1.0 else slice_mm / 25.0
    assert np.count_nonzero(result.body_mask) * voxel_cm3 == pytest.approx(truth.vbv_cm3, rel=body_tolerance)
    assert np.count_nonzero(result.cement_in_body_mask) * voxel_cm3 == pytest.approx(truth.bcv_cm3, rel=0.015)
    assert np.count_nonzero(result.extravertebral_cement_mask) * voxel_cm3 == pytest.approx(
        truth.extravertebral_cement_cm3, rel=0.05
    )
    assert not np.any(result.cement_in_body_mask & ~result.body_mask)
    assert not np.any(result.extravertebral_cement_mask & result.body_mask)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_truth_masks_are_exact_voxel_centre_tests(orientation):
    """Each mask voxel, in the shapes' bounding boxes, equals the shape inequality written out here."""
    result = grid_case(orientation)
    g, anatomy = result.ct.geometry, result.anatomy
    body, tail, leak = anatomy.target.body, anatomy.pedicle_tail, anatomy.leak

    def in_body(p):
        (a, b), c = body.semi_axes_mm, body.centre_ras
        radial = ((p[:, 0] - c[0]) / a) ** 2 + ((p[:, 1] - c[1]) / b) ** 2 <= 1.0
        return radial & (np.abs(p[:, 2] - c[2]) <= body.height_mm / 2)

    def in_ellipsoid(blob):
        return lambda p: (((p - blob.centre_ras) / blob.semi_axes_mm) ** 2).sum(axis=1) <= 1.0

    def in_tail(p):
        start, end = np.asarray(tail.start_ras), np.asarray(tail.end_ras)
        length = np.linalg.norm(end - start)
        along = (p - start) @ (end - start) / length
        radial = np.linalg.norm(p - start - np.outer(along, (end - start) / length), axis=1)
        return (along >= 0) & (along <= length) & (radial <= tail.radius_mm)

    cases = [(result.body_mask, [body], [in_body])]
    cases.append(
        (result.cement_in_body_mask, anatomy.cement_blobs, [in_ellipsoid(b) for b in anatomy.cement_blobs])
    )
    cases.append((result.extravertebral_cement_mask, [tail, leak], [in_tail, in_ellipsoid(leak)]))
    for mask, shapes, tests in cases:
        lower, upper = union_bounds(shapes)
        corners = np.array(
            [
                [x, y, z]
                for x in (lower[0], upper[0])
                for y in (lower[1], upper[1])
                for z in (lower[2], upper[2])
            ]
        )
        ijk = g.ras_to_ijk_points(corners)
        low = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, None)
        high = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 2, g.shape[::-1])
        k, j, i = np.meshgrid(*(np.arange(low[n], high[n]) for n in (2, 1, 0)), indexing="ij")
        k, j, i = k.ravel(), j.ravel(), i.ravel()
        expected = np.any([test(g.voxel_centers_ras((k, j, i))) for test in tests], axis=0)
        assert np.array_equal(mask[k, j, i], expected)
        assert np.count_nonzero(mask) == np.count_nonzero(expected)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_truth_masks_land_at_the_same_ras_place_on_every_grid(orientation):
    """RAS centroids of the masks match the analytic centres within half the largest voxel size."""
    result = grid_case(orientation)
    g, anatomy = result.ct.geometry, result.anatomy
    half_voxel = 0.5 * float(g.spacing_mm.max())

    def centroid(mask):
        return g.voxel_centers_ras(np.nonzero(mask)).mean(axis=0)

    def weighted_centre(shapes):
        centres = [
            (np.add(s.start_ras, s.end_ras) / 2 if isinstance(s, Cylinder) else np.asarray(s.centre_ras))
            for s in shapes
        ]
        weights = [s.volume_mm3 for s in shapes]
        return np.average(centres, axis=0, weights=weights)

    assert np.linalg.norm(centroid(result.body_mask) - result.truth.body_centre_ras) <= half_voxel
    assert (
        np.linalg.norm(centroid(result.cement_in_body_mask) - weighted_centre(anatomy.cement_blobs))
        <= half_voxel
    )
    assert (
        np.linalg.norm(
            centroid(result.extravertebral_cement_mask) - weighted_centre(anatomy.extravertebral_cement)
        )
        <= half_voxel
    )


def test_grids_are_oblique_or_flipped_as_asked():
    directions = {name: grid_case(name).ct.geometry.directions_ras for name in ORIENTATIONS}
    assert directions["axial"] == pytest.approx(np.eye(3), abs=1e-12)
    assert np.diag(directions["lps"]) == pytest.approx([-1.0, -1.0, 1.0], abs=1e-12)
    assert np.diag(directions["flipped"]) == pytest.approx([-1.0, -1.0, -1.0], abs=1e-12)
    oblique = directions["oblique"]
    assert np.abs(oblique - np.diag(np.diag(oblique))).max() > 0.2
    assert oblique.T @ oblique == pytest.approx(np.eye(3), abs=1e-12)
    assert np.degrees(np.arccos(oblique[2, 2])) > 15.0
    assert grid_case("lps").ct.geometry.spacing_mm == pytest.approx([0.7, 0.9, 1.3], abs=1e-12)


@pytest.mark.parametrize("orientation", ["axial", "oblique"])
def test_field_of_view_holds_every_vertebra_its_posterior_elements_and_the_cement(orientation):
    """No solid is cut off: its voxel count equals the count on the same grid grown by 30 voxels a side."""
    result = grid_case(orientation)
    g, anatomy = result.ct.geometry, result.anatomy
    margin = 30
    matrix = g.ijk_to_ras.copy()
    matrix[:3, 3] = g.ijk_to_ras_points([[-margin, -margin, -margin]])[0]
    grown = VolumeGeometry(matrix, tuple(n + 2 * margin for n in g.shape))
    solids = [anatomy.pedicle_tail, anatomy.leak, *anatomy.cement_blobs]
    for vertebra in anatomy.vertebrae:
        solids += [vertebra.body, *vertebra.posterior_elements.values()]
    assert len(solids) == 2 + 1 + 3 * 7
    for solid in solids:
        count = np.count_nonzero(shape_mask(g, [solid]))
        assert count > 0 and count == np.count_nonzero(shape_mask(grown, [solid]))


# --- intensities --------------------------------------------------------------------------------------


def test_intensities_look_like_a_postoperative_ct():
    result = phantom()
    ct, anatomy = result.ct, result.anatomy
    hu = ct.array_hu
    assert hu.dtype == np.int16 and hu.min() >= -1024 and hu.max() <= 3071
    assert np.mean(hu <= -900) > 0.05  # air around the patient

    g = ct.geometry
    body_voxels = np.nonzero(result.body_mask)
    ras = g.voxel_centers_ras(body_voxels)
    values = hu[body_voxels]
    trabecular = anatomy.target.trabecular
    shell = ~trabecular.contains_points(ras)
    assert np.mean(values[shell] > 226) >= 0.95  # cortex, endplates included, after blur and noise

    # Trabecular interior at least 2 mm from the cortex and 2.5 mm from the cement.
    (a, b), c = trabecular.semi_axes_mm, np.asarray(trabecular.centre_ras)
    deep = ((ras[:, 0] - c[0]) / (a - 2)) ** 2 + ((ras[:, 1] - c[1]) / (b - 2)) ** 2 <= 1.0
    deep &= np.abs(ras[:, 2] - c[2]) <= trabecular.height_mm / 2 - 2
    for blob in anatomy.cement_blobs:
        grown = Ellipsoid(blob.centre_ras, tuple(np.add(blob.semi_axes_mm, 2.5)))
        deep &= ~grown.contains_points(ras)
    interior = values[deep]
    assert interior.size > 1000
    assert np.median(interior) < 226 and 80 <= np.median(interior) <= 140
    assert 0.0005 <= np.mean(interior > 226) <= 0.1  # osteoporotic, yet some dense trabeculae
    assert 30 <= interior.std() <= 70

    # Cement at least 1 mm inside its surface: 1500 to 3071 HU.
    for shapes in (anatomy.cement_blobs, [anatomy.leak]):
        cores = [Ellipsoid(s.centre_ras, tuple(np.subtract(s.semi_axes_mm, 1.0))) for s in shapes]
        core = shape_mask(g, cores)
        assert core.any() and hu[core].min() >= 1500 and hu[core].max() <= 3071
    tail = anatomy.pedicle_tail
    tail_core = shape_mask(g, [Cylinder(tail.start_ras, tail.end_ras, tail.radius_mm - 1.0)])
    assert hu[tail_core].min() >= 1500


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_intensities_sit_at_the_anatomy_whatever_the_grid(orientation):
    result = grid_case(orientation)
    ct, anatomy, truth = result.ct, result.anatomy, result.truth
    centre = truth.body_centre_ras
    for blob in anatomy.cement_blobs:
        assert 1500 <= nearest_voxel_hu(ct, blob.centre_ras).item() <= 3071
    assert nearest_voxel_hu(ct, anatomy.leak.centre_ras).item() >= 1500
    tail = anatomy.pedicle_tail
    assert nearest_voxel_hu(ct, np.add(tail.start_ras, tail.end_ras) / 2).item() >= 1500
    # Contralateral trabecular bone, 3 mm inside the cortex and clear of the (left-side) cement.
    a = anatomy.target.trabecular.semi_axes_mm[0]
    assert np.median(nearest_voxel_hu(ct, centre + [a - 3.0, 0.0, 0.0], 1)) < 226
    disc_centre = centre + [0.0, 0.0, 0.5 * (25.0 + 9.0)]
    assert 40 <= np.median(nearest_voxel_hu(ct, disc_centre, 1)) <= 120
    assert nearest_voxel_hu(ct, centre + [0.0, 15.0 - 0.5, 0.0], 0).item() > 226  # anterior cortex
    assert ct.array_hu[0, 0, 0] <= -900 and ct.array_hu[-1, -1, -1] <= -900  # corners: air


def test_extended_scale_keeps_the_cement_core_above_3071():
    result = phantom(extended_scale=True)
    hu = result.ct.array_hu
    cores = [
        Ellipsoid(b.centre_ras, tuple(np.subtract(b.semi_axes_mm, 1.0))) for b in result.anatomy.cement_blobs
    ]
    core = shape_mask(result.ct.geometry, cores)
    assert np.mean(hu[core] > 3071) > 0.9
    assert 3300 <= np.median(hu[core]) <= 3600
    assert hu.min() >= -1024


def test_without_cement_there_is_no_cement_at_all():
    result = phantom(cement_in_body=False)
    truth = result.truth
    assert (truth.bcv_cm3, truth.psbcv_cm3, truth.extravertebral_cement_cm3) == (0.0, 0.0, 0.0)
    assert truth.psbcv_vbv_pct == 0.0 and not truth.exceeds_cutoff
    assert not result.cement_in_body_mask.any() and not result.extravertebral_cement_mask.any()
    assert result.ct.array_hu.max() < 1500
    assert truth.vbv_cm3 == pytest.approx(phantom().truth.vbv_cm3, rel=1e-12)


# --- anatomy the segmentation relies on -----------------------------------------------------------------


@pytest.mark.parametrize("with_ribs", [False, True])
def test_posterior_elements_and_ribs_join_the_body_but_not_the_neighbours(with_ribs):
    """Bone (>= 226 HU) of each posterior element is mostly in the target body's connected component."""
    result = phantom(with_ribs=with_ribs)
    ct, anatomy = result.ct, result.anatomy
    bone = sitk.GetImageFromArray((ct.array_hu >= 226).astype(np.uint8))
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(bone))
    target, above = anatomy.target, anatomy.vertebrae[anatomy.target_index + 1]

    def cortex_label(vertebra):
        point = np.asarray(vertebra.body.centre_ras) + [0.0, vertebra.body.semi_axes_mm[1] - 0.5, 0.0]
        i, j, k = np.round(ct.geometry.ras_to_ijk_points(point)[0]).astype(int)
        return labels[k, j, i]

    body_label = cortex_label(target)
    assert body_label != 0 and cortex_label(above) not in (0, body_label)
    parts = list(target.posterior_elements.values()) + list(target.ribs)
    assert len(parts) == (8 if with_ribs else 6)
    for part in parts:
        inside = shape_mask(ct.geometry, [part]) & (labels > 0)
        assert np.mean(labels[inside] == body_label) > 0.95


# --- determinism and input checks ---------------------------------------------------------------------


def test_generation_is_deterministic_for_a_seed():
    first = make_phantom(PhantomSpec(seed=7, n_vertebrae=1))
    second = make_phantom(PhantomSpec(seed=7, n_vertebrae=1))
    other = make_phantom(PhantomSpec(seed=8, n_vertebrae=1))
    assert np.array_equal(first.ct.array_hu, second.ct.array_hu)
    assert np.array_equal(first.body_mask, other.body_mask)
    assert np.mean(first.ct.array_hu != other.ct.array_hu) > 0.5
    assert first.ct.geometry.same_grid_as(second.ct.geometry)


@pytest.mark.parametrize(
    "options",
    [
        {"side": "up"},
        {"orientation": "sideways"},
        {"cement_preset": "medium"},
        {"spacing_mm": (0.8, 0.0, 1.0)},
        {"spacing_mm": (0.8, 0.8)},
        {"n_vertebrae": 0},
        {"n_vertebrae": 2.5},
        {"spacing_mm": ("fine", 0.8, 1.0)},
        {"body_semi_axes_mm": (5.0, 15.0)},
        {"noise_sd_hu": float("nan")},
    ],
)
def test_bad_specs_raise_a_clear_error(options):
    with pytest.raises(CementLeakageError, match="phantom|side|preset|orientation"):
        make_phantom(PhantomSpec(**options))
