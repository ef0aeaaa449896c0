"""The synthetic postoperative CT: its analytic truth, truth masks, grids and intensities.

Every figure is checked against an independent reference: stratified Monte Carlo integration
of the phantom's implicit shapes, inequalities written out here, hand-placed RAS points, or
connected components computed by SimpleITK.
"""

from __future__ import annotations

import dataclasses
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


@pytest.mark.parametrize("orientation", ["flipped", "oblique"])
def test_grid_offset_moves_the_voxels_not_the_anatomy(orientation):
    """A grid offset of (0.1, -0.2, 0.5) voxels moves the origin by as much along the grid's own
    axes (spacing and directions) and keeps the shape, the truth and the endplate points."""
    spec = PhantomSpec(orientation=orientation, spacing_mm=(0.8, 0.8, 2.0), seed=3)
    shifted = dataclasses.replace(spec, grid_offset_voxels=(0.37 + 0.1, 0.29 - 0.2, 0.41 + 0.5))
    first, second = make_phantom(spec), make_phantom(shifted)
    g, h = first.ct.geometry, second.ct.geometry
    assert spec.grid_offset_voxels == (0.37, 0.29, 0.41)
    assert h.shape == g.shape
    moved = g.directions_ras @ (np.array([0.1, -0.2, 0.5]) * g.spacing_mm)
    assert h.ijk_to_ras[:3, 3] - g.ijk_to_ras[:3, 3] == pytest.approx(moved, abs=1e-9)
    assert second.truth.vbv_cm3 == first.truth.vbv_cm3
    assert second.truth.upper_ras == pytest.approx(first.truth.upper_ras, abs=1e-12)


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
        {"grid_offset_voxels": (0.37, 0.29)},
        {"grid_offset_voxels": (0.37, 0.29, float("nan"))},
    ],
)
def test_bad_specs_raise_a_clear_error(options):
    with pytest.raises(CementLeakageError, match="phantom|side|preset|orientation"):
        make_phantom(PhantomSpec(**options))


# --- switches: planted leaks ------------------------------------------------------------------------------

FINE_MM = (0.4, 0.4, 0.4)
"""Isotropic voxel size (mm) of the grids that check the switches' truth masks."""
ALL_LEAKS = ("anterior", "spinal canal", "disc superior", "disc inferior")


def fine_phantom(n_vertebrae=1, **options):
    """A phantom on the fine grid; one vertebra (with both discs) unless asked."""
    return phantom(spacing=FINE_MM, n_vertebrae=n_vertebrae, **options)


def ellipsoid_volume_mm3(semi_axes):
    a, b, c = semi_axes
    return 4.0 / 3.0 * np.pi * a * b * c


def offset_surface(blob, offset_mm, n=30):
    """Points (RAS mm) at ``offset_mm`` outside an axis-aligned ellipsoid along its outward normals."""
    surface = ellipsoid_surface(blob, n)
    normal = (surface - blob.centre_ras) / np.square(blob.semi_axes_mm)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return surface + offset_mm * normal


@pytest.mark.parametrize("side", ["left", "right"])
def test_planted_leaks_have_closed_form_volumes_and_voxel_labels_within_tolerance(side):
    """Per leak: truth = 4/3 pi abc (or pi r² L); labels x voxel volume within 2.5% (disc leaks,
    3 mm thin, within 3%); all extravertebral cement within 1.5% (0.4 mm grid)."""
    result = fine_phantom(side=side, leaks=ALL_LEAKS)
    truth, labels = result.truth, result.leak_labels
    expected = {
        "pedicle tract": (side, np.pi * 2.0**2 * 12.0),
        "paravertebral": (side, ellipsoid_volume_mm3((3.5, 3.0, 7.0))),
        "anterior": ("midline", ellipsoid_volume_mm3((5.0, 2.5, 5.0))),
        "spinal canal": ("midline", ellipsoid_volume_mm3((3.0, 2.0, 5.0))),
        "disc superior": (side, ellipsoid_volume_mm3((6.0, 5.0, 1.5))),
        "disc inferior": (side, ellipsoid_volume_mm3((6.0, 5.0, 1.5))),
    }
    assert [leak.location for leak in truth.leaks] == list(expected)
    voxel_mm3 = result.ct.geometry.voxel_volume_mm3
    for label, leak in enumerate(truth.leaks, start=1):
        leak_side, volume_mm3 = expected[leak.location]
        assert leak.side == leak_side
        assert leak.volume_cm3 == pytest.approx(volume_mm3 / 1000.0, rel=1e-12)
        tolerance = 0.03 if leak.location.startswith("disc") else 0.025
        assert np.count_nonzero(labels == label) * voxel_mm3 / 1000.0 == pytest.approx(
            leak.volume_cm3, rel=tolerance
        )
        centroid = result.ct.geometry.voxel_centers_ras(np.nonzero(labels == label)).mean(axis=0)
        assert np.linalg.norm(centroid - leak.centre_ras) <= 0.2
        assert 0.1 <= leak.volume_cm3 <= 0.5
    total = sum(volume for _, volume in expected.values()) / 1000.0
    assert truth.extravertebral_cement_cm3 == pytest.approx(total, rel=1e-12)
    assert np.count_nonzero(result.extravertebral_cement_mask) * voxel_mm3 / 1000.0 == pytest.approx(
        total, rel=0.015
    )
    assert np.array_equal(result.extravertebral_cement_mask, labels > 0)


def test_planted_leaks_sit_where_their_location_says_with_the_stated_gaps():
    result = fine_phantom(leaks=ALL_LEAKS)
    anatomy, truth = result.anatomy, result.truth
    body = anatomy.target.body
    (a, b), centre = body.semi_axes_mm, np.asarray(body.centre_ras)
    polygon = ellipse_polygon(a, b)
    solids = {location: solid for location, _, solid in anatomy.planted_leaks}
    for location, gap_mm in (("anterior", 2.0), ("spinal canal", 2.0)):
        points = ellipsoid_surface(solids[location]) - centre
        assert np.all((points[:, 0] / a) ** 2 + (points[:, 1] / b) ** 2 > 1.0)
        assert min_distance_2d(points[:, :2], polygon) >= gap_mm - 1e-3
    assert solids["anterior"].centre_ras[1] > centre[1] + b
    canal = solids["spinal canal"]
    assert canal.centre_ras[1] < centre[1] - b and canal.centre_ras[0] == pytest.approx(centre[0])
    # Between the pedicles: no canal-leak surface point inside either pedicle, and the pedicles
    # lie on both sides of it.
    for side in ("left", "right"):
        pedicle = anatomy.target.posterior_elements[f"{side} pedicle"]
        assert not np.any(pedicle.contains_points(ellipsoid_surface(canal)))
    left_x = anatomy.target.pedicle_axes_ras["left"][0][0]
    right_x = anatomy.target.pedicle_axes_ras["right"][0][0]
    assert left_x < canal.centre_ras[0] - 3.0 and right_x > canal.centre_ras[0] + 3.0
    top, bottom = centre[2] + 12.5, centre[2] - 12.5
    for location, low, high in (("disc superior", top, top + 9.0), ("disc inferior", bottom - 9.0, bottom)):
        z = ellipsoid_surface(solids[location])[:, 2]
        assert z.min() - low >= 1.5 - 1e-9 and high - z.max() >= 1.5 - 1e-9
    # Each leak is its own connected component of cement (>= 1500 HU), apart from the body's cement.
    cement = sitk.GetImageFromArray((result.ct.array_hu >= 1500).astype(np.uint8))
    components = sitk.GetArrayFromImage(sitk.ConnectedComponent(cement))
    in_body = set(np.unique(components[result.cement_in_body_mask])) - {0}
    seen = set()
    for label, leak in enumerate(truth.leaks, start=1):
        found = np.unique(components[result.leak_labels == label])
        found = set(found[found > 0])
        assert len(found) == 1 and not found & in_body and not found & seen
        seen |= found
        assert nearest_voxel_hu(result.ct, leak.centre_ras).item() >= 1500


def test_default_truth_lists_the_pedicle_tract_and_the_paravertebral_leak():
    result = phantom()
    truth, anatomy = result.truth, result.anatomy
    assert [(leak.location, leak.side) for leak in truth.leaks] == [
        ("pedicle tract", "left"),
        ("paravertebral", "left"),
    ]
    tail = anatomy.pedicle_tail
    assert truth.leaks[0].centre_ras == pytest.approx(np.add(tail.start_ras, tail.end_ras) / 2, abs=1e-12)
    assert truth.leaks[1].centre_ras == pytest.approx(anatomy.leak.centre_ras, abs=1e-12)
    assert sum(leak.volume_cm3 for leak in truth.leaks) == pytest.approx(
        truth.extravertebral_cement_cm3, rel=1e-12
    )
    assert set(np.unique(result.leak_labels)) == {0, 1, 2}
    assert phantom(pedicle_tail=False, paravertebral_leak=False).truth.leaks == []


# --- switches: compression fractures and the Schmorl node ---------------------------------------------------


def fractured_body_test(compression, ratio, a=20.0, b=15.0, h=25.0, centre=(4.0, -8.0, 25.0), pit=None):
    """Inside test of a fractured body written out from the spec (RAS mm), pit = (centre, radius)."""
    cx, cy, cz = centre
    bottom = cz - h / 2

    def inside(p):
        dx, dy, z = p[:, 0] - cx, p[:, 1] - cy, p[:, 2]
        radial = (dx / a) ** 2 + (dy / b) ** 2
        upper = np.full(len(p), bottom + h)
        lower = np.full(len(p), bottom)
        if compression == "wedge":
            upper = bottom + h - (1 - ratio) * h * (dy + b) / (2 * b)
        elif compression == "biconcave":
            dimple = (1 - ratio) * h / 2 * np.clip(1 - radial, 0, None)
            upper, lower = upper - dimple, lower + dimple
        result = (radial <= 1) & (z <= upper) & (z >= lower)
        if pit is not None:
            result &= np.linalg.norm(p - pit[0], axis=1) > pit[1]
        return result

    return inside


COMPRESSION_CASES = [("wedge", 0.6), ("wedge", 0.8), ("biconcave", 0.6), ("biconcave", 0.85)]


@pytest.mark.parametrize("compression, ratio", COMPRESSION_CASES)
def test_compressed_body_volume_is_closed_form_and_matches_integration_and_the_mask(compression, ratio):
    """VBV: wedge pi a b h (1 + r) / 2, biconcave pi a b (h - (1 - r) h / 2); Monte Carlo of the
    written-out inequality within 0.25%, the 0.4 mm truth mask within 1%."""
    result = fine_phantom(compression=compression, compression_ratio=ratio)
    truth = result.truth
    area = np.pi * 20.0 * 15.0
    expected = area * 25.0 * (1 + ratio) / 2 if compression == "wedge" else area * (25.0 - (1 - ratio) * 12.5)
    assert truth.vbv_cm3 == pytest.approx(expected / 1000.0, rel=1e-12)
    inside = fractured_body_test(compression, ratio)
    lower, upper = np.array([-16.0, -23.0, 12.5]), np.array([24.0, 7.0, 37.5])
    assert truth.vbv_cm3 == pytest.approx(stratified_volume_mm3(inside, lower, upper) / 1000.0, rel=0.0025)
    voxel_cm3 = result.ct.geometry.voxel_volume_mm3 / 1000.0
    assert np.count_nonzero(result.body_mask) * voxel_cm3 == pytest.approx(truth.vbv_cm3, rel=0.01)
    # Endplate midpoints: the deformed faces on the body axis.
    axis_height = 25.0 * (1 + ratio) / 2 if compression == "wedge" else 25.0 * ratio
    bottom = 12.5 + (0.0 if compression == "wedge" else (1 - ratio) * 12.5)
    assert truth.lower_ras == pytest.approx([4.0, -8.0, bottom], abs=1e-9)
    assert truth.upper_ras == pytest.approx([4.0, -8.0, bottom + axis_height], abs=1e-9)
    # The body mask's height near the anterior and posterior rims and on the axis.
    g = result.ct.geometry
    ras = g.voxel_centers_ras(np.nonzero(result.body_mask))

    def height_near(y, x=4.0):
        column = ras[(np.abs(ras[:, 0] - x) < 0.5) & (np.abs(ras[:, 1] - y) < 0.5)]
        return column[:, 2].max() - column[:, 2].min()

    if compression == "wedge":
        # 1 mm inside the rims: the plane's height there, within one voxel plus the 1 mm column.
        slope = (1 - ratio) * 25.0 / 30.0
        assert height_near(-8.0 + 14.0) == pytest.approx(25.0 - slope * 29.0, abs=0.4 + slope)
        assert height_near(-8.0 - 14.0) == pytest.approx(25.0 - slope * 1.0, abs=0.4 + slope)
    else:
        assert height_near(-8.0) == pytest.approx(25.0 * ratio, abs=0.8)
        assert height_near(-8.0 + 14.5) == pytest.approx(25.0, abs=1.6)


@pytest.mark.parametrize("compression, ratio", COMPRESSION_CASES)
def test_cement_stays_1_5_mm_inside_the_compressed_trabecular_region_and_truth_is_closed_form(
    compression, ratio
):
    result = fine_phantom(compression=compression, compression_ratio=ratio)
    truth, anatomy = result.truth, result.anatomy
    # Trabecular region: the body's faces moved 1 mm (the cortex) inwards along S, side wall 1 mm in.
    body = fractured_body_test(compression, ratio)

    def trabecular(p):
        ok = body(p + [0, 0, 1.0]) & body(p - [0, 0, 1.0])
        return ok & (((p[:, 0] - 4.0) / 19.0) ** 2 + ((p[:, 1] + 8.0) / 14.0) ** 2 <= 1.0)

    for blob in anatomy.cement_blobs:
        assert np.all(trabecular(offset_surface(blob, 1.5)))
    bcv = sum(ellipsoid_volume_mm3(blob.semi_axes_mm) for blob in anatomy.cement_blobs)
    assert truth.bcv_cm3 == pytest.approx(bcv / 1000.0, rel=1e-12)
    psbcv = sum(blob.volume_beyond_plane_mm3(0, truth.upper_ras[0], -1.0) for blob in anatomy.cement_blobs)
    assert truth.psbcv_cm3 == pytest.approx(psbcv / 1000.0, rel=1e-12)
    voxel_cm3 = result.ct.geometry.voxel_volume_mm3 / 1000.0
    assert np.count_nonzero(result.cement_in_body_mask) * voxel_cm3 == pytest.approx(truth.bcv_cm3, rel=0.015)
    assert not np.any(result.cement_in_body_mask & ~result.body_mask)


def test_wedge_leaves_disc_tissue_where_the_body_was_and_keeps_the_cortex_bright():
    result = fine_phantom(compression="wedge", compression_ratio=0.6)
    ct = result.ct
    # 2 mm below the original top, 3 mm inside the anterior wall: vacated, now disc (about 80 HU).
    assert 20 <= np.median(nearest_voxel_hu(ct, [4.0, -8.0 + 12.0, 35.5], 1)) <= 140
    # The tilted upper endplate 3 mm behind the anterior wall, and the posterior rim at full height.
    upper_there = 37.5 - 0.4 * 25.0 * 27.0 / 30.0
    assert nearest_voxel_hu(ct, [4.0, -8.0 + 12.0, upper_there - 0.5]).item() > 226
    assert nearest_voxel_hu(ct, [4.0, -8.0 - 12.0, 37.0]).item() > 226


def test_schmorl_node_is_a_disc_filled_hemispherical_pit_subtracted_from_the_volume():
    result = fine_phantom(schmorl_node=True)
    truth, body = result.truth, result.anatomy.target.body
    pit_centre = np.array([4.0, -8.0 - 0.35 * 15.0, 37.5])
    assert body.pit_centre_ras == pytest.approx(pit_centre, abs=1e-12)
    expected = np.pi * 20 * 15 * 25 - 2.0 / 3.0 * np.pi * 3.0**3
    assert truth.vbv_cm3 == pytest.approx(expected / 1000.0, rel=1e-12)
    inside = fractured_body_test("none", 1.0, pit=(pit_centre, 3.0))
    lower, upper = np.array([-16.0, -23.0, 12.5]), np.array([24.0, 7.0, 37.5])
    assert truth.vbv_cm3 == pytest.approx(stratified_volume_mm3(inside, lower, upper) / 1000.0, rel=0.0025)
    voxel_cm3 = result.ct.geometry.voxel_volume_mm3 / 1000.0
    assert np.count_nonzero(result.body_mask) * voxel_cm3 == pytest.approx(truth.vbv_cm3, rel=0.01)
    # The pit removes (2/3) pi 27 = 56.5 mm³ from the default body's mask on the same grid.
    removed = np.count_nonzero(fine_phantom().body_mask & ~result.body_mask) * voxel_cm3 * 1000.0
    assert removed == pytest.approx(2.0 / 3.0 * np.pi * 27.0, rel=0.1)
    assert 20 <= np.median(nearest_voxel_hu(result.ct, pit_centre - [0, 0, 1.5], 1)) <= 160
    assert truth.upper_ras == pytest.approx([4.0, -8.0, 37.5], abs=1e-12)
    for blob in result.anatomy.cement_blobs:
        points = offset_surface(blob, 1.5)
        assert np.all(np.linalg.norm(points - pit_centre, axis=1) > 3.0)


# --- switches: cortical openings, faint cortex, fracture cleft ---------------------------------------------


def test_basivertebral_foramen_opens_the_posterior_cortex_inside_the_body_outline():
    result, default = fine_phantom(basivertebral_foramen=True), fine_phantom()
    assert np.array_equal(result.body_mask, default.body_mask)
    assert result.truth.vbv_cm3 == default.truth.vbv_cm3
    ct = result.ct
    wall = np.array([4.0, -8.0 - 15.0 + 0.5, 25.0])  # in the posterior cortex, mid-height, midline
    assert np.median(nearest_voxel_hu(ct, wall, 1)) < 150
    assert np.median(nearest_voxel_hu(default.ct, wall, 1)) > 226
    # The opening is 6 mm wide and 4 mm high: the cortex 4.5 mm to the side and 3.5 mm up is intact.
    for shift in ([4.5, 0.3, 0.0], [0.0, 0.0, 3.5]):
        assert nearest_voxel_hu(ct, wall + shift).item() > 226


def test_faint_cortex_takes_the_asked_intensity():
    result = fine_phantom(cortex_hu=300.0)
    g, anatomy = result.ct.geometry, result.anatomy
    ras = g.voxel_centers_ras(np.nonzero(result.body_mask))
    # Side wall voxels whose centre is 0.3-0.7 mm inside the outer surface, away from the endplates.
    radial = np.sqrt(((ras[:, 0] - 4.0) / 20.0) ** 2 + ((ras[:, 1] + 8.0) / 15.0) ** 2)
    shell = (radial > 1.0 - 0.7 / 17.5) & (radial < 1.0 - 0.3 / 17.5) & (np.abs(ras[:, 2] - 25.0) < 8.0)
    values = result.ct.array_hu[np.nonzero(result.body_mask)][shell]
    assert values.size > 500
    assert 150 <= np.median(values) <= 330
    assert np.median(fine_phantom().ct.array_hu[np.nonzero(result.body_mask)][shell]) > 450
    assert anatomy.target.body.volume_mm3 == pytest.approx(np.pi * 20 * 15 * 25, rel=1e-12)


def test_fracture_cleft_is_fluid_inside_the_body_and_the_cement_fills_it_where_it_reaches_it():
    result, plain = fine_phantom(fracture_cleft=True), fine_phantom()
    truth, anatomy = result.truth, result.anatomy
    assert truth.vbv_cm3 == pytest.approx(np.pi * 20 * 15 * 25 / 1000.0, rel=1e-12)
    assert np.array_equal(result.body_mask, plain.body_mask)
    ((material, cleft),) = anatomy.inserts
    assert material == "fluid" and cleft.height_mm == 2.0 and cleft.centre_ras[2] == pytest.approx(25.0)
    assert cleft.semi_axes_mm == pytest.approx((18.0, 13.0))
    # The cleft does not move the cement: the blobs are those of the body without it.
    assert anatomy.cement_blobs == plain.anatomy.cement_blobs
    ((blob_centre, blob_semi_axes),) = [(b.centre_ras, b.semi_axes_mm) for b in anatomy.cement_blobs]
    assert blob_centre == pytest.approx((2.0, -8.0, 25.0))
    assert blob_semi_axes == pytest.approx((15.0, 12.0, 9.8))
    bcv = sum(ellipsoid_volume_mm3(blob.semi_axes_mm) for blob in anatomy.cement_blobs)
    assert truth.bcv_cm3 == pytest.approx(bcv / 1000.0, rel=1e-12)
    assert truth.bcv_cm3 == pytest.approx(plain.truth.bcv_cm3, rel=1e-12)
    # In the cleft (mid-height) cement where the blob reaches (R -4..8 mm, blob edge at R 17) and
    # fluid (-50 HU, 2 mm thick, seen through the 0.6 mm blur) beyond it (R 20, cleft edge at 22).
    for x in (-4.0, 2.0, 8.0):
        assert np.median(nearest_voxel_hu(result.ct, [x, -8.0, 25.0], 0)) > 1500
    assert np.median(nearest_voxel_hu(result.ct, [20.0, -8.0, 25.0], 0)) < 60


def test_a_vacuum_cleft_holds_gas_where_the_cement_does_not_reach():
    result = fine_phantom(fracture_cleft=True, cleft_gas=True)
    plain = fine_phantom(fracture_cleft=True)
    ((material, cleft),) = result.anatomy.inserts
    assert material == "gas" and cleft == plain.anatomy.inserts[0][1]
    assert result.truth.vbv_cm3 == pytest.approx(plain.truth.vbv_cm3, rel=1e-12)
    assert result.truth.bcv_cm3 == pytest.approx(plain.truth.bcv_cm3, rel=1e-12)
    for x in (-4.0, 2.0, 8.0):
        assert np.median(nearest_voxel_hu(result.ct, [x, -8.0, 25.0], 0)) > 1500
    # The 2 mm slab of gas (-900 HU) seen through the 0.6 mm blur: about -800 HU at its middle.
    assert np.median(nearest_voxel_hu(result.ct, [20.0, -8.0, 25.0], 0)) < -600


def test_a_vacuum_cleft_needs_a_fracture_cleft():
    with pytest.raises(CementLeakageError, match="needs a fracture cleft"):
        make_phantom(PhantomSpec(cleft_gas=True))


# --- switches: tilt and axial rotation of the stack ----------------------------------------------------


def rotation_matrix(tilt_deg, rotation_deg):
    """Coronal tilt about A (S towards +R), then axial rotation about S (R towards A)."""
    t, r = np.radians(tilt_deg), np.radians(rotation_deg)
    about_a = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    about_s = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return about_s @ about_a


TURN_CASES = [(20.0, 0.0, "left"), (0.0, 20.0, "left"), (-12.0, 17.0, "right")]


@pytest.mark.parametrize("tilt, rotation, side", TURN_CASES)
def test_turned_stack_truth_matches_integration_and_the_endplate_points_turn_with_it(tilt, rotation, side):
    result = phantom(side=side, tilt_deg=tilt, rotation_deg=rotation)
    straight = phantom(side=side)
    truth, anatomy = result.truth, result.anatomy
    matrix = rotation_matrix(tilt, rotation)
    centre = np.array([4.0, -8.0, 25.0])
    for name in ("upper_ras", "lower_ras"):
        expected = matrix @ (getattr(straight.truth, name) - centre) + centre
        assert getattr(truth, name) == pytest.approx(expected, abs=1e-9)
    assert truth.vbv_cm3 == pytest.approx(straight.truth.vbv_cm3, rel=1e-12)
    assert truth.bcv_cm3 == pytest.approx(straight.truth.bcv_cm3, rel=1e-12)
    blobs = anatomy.cement_blobs
    in_blob = inside_any(blobs)
    plane = split_plane_from_endplates(truth.upper_ras, truth.lower_ras, side)
    psbcv = stratified_volume_mm3(
        lambda p: in_blob(p) & (plane.signed_distance_mm(p) > 0), *union_bounds(blobs), seed=2
    )
    assert truth.psbcv_cm3 == pytest.approx(psbcv / 1000.0, rel=0.0025)
    if rotation == 0.0:
        # A coronal tilt turns the plane with the body: PSBCV as in the straight stack.
        assert truth.psbcv_cm3 == pytest.approx(straight.truth.psbcv_cm3, rel=1e-9)
    body = anatomy.target.body
    vbv = stratified_volume_mm3(body.contains_points, *body.bounds_ras(), seed=4)
    assert truth.vbv_cm3 == pytest.approx(vbv / 1000.0, rel=0.0025)
    assert truth.extravertebral_cement_cm3 == pytest.approx(
        straight.truth.extravertebral_cement_cm3, rel=1e-12
    )


@pytest.mark.parametrize("tilt, rotation, side", TURN_CASES[:2])
def test_turned_stack_masks_match_the_truth_on_a_fine_grid(tilt, rotation, side):
    result = fine_phantom(3, side=side, tilt_deg=tilt, rotation_deg=rotation, leaks=("anterior",))
    truth, g = result.truth, result.ct.geometry
    voxel_cm3 = g.voxel_volume_mm3 / 1000.0
    assert np.count_nonzero(result.body_mask) * voxel_cm3 == pytest.approx(truth.vbv_cm3, rel=0.01)
    assert np.count_nonzero(result.cement_in_body_mask) * voxel_cm3 == pytest.approx(truth.bcv_cm3, rel=0.015)
    assert np.count_nonzero(result.extravertebral_cement_mask) * voxel_cm3 == pytest.approx(
        truth.extravertebral_cement_cm3, rel=0.015
    )
    # Voxel PSBCV: cement voxels on the puncture side of the truth plane, within 2%.
    plane = split_plane_from_endplates(truth.upper_ras, truth.lower_ras, side)
    cement = g.voxel_centers_ras(np.nonzero(result.cement_in_body_mask))
    assert np.count_nonzero(plane.signed_distance_mm(cement) > 0) * voxel_cm3 == pytest.approx(
        truth.psbcv_cm3, rel=0.02
    )
    # The body mask is the turned cylinder written out: rotate voxel centres back.
    ras = g.voxel_centers_ras(np.nonzero(result.body_mask))
    centre = np.array([4.0, -8.0, 25.0])
    local = (ras - centre) @ rotation_matrix(tilt, rotation) + centre
    assert np.all(((local[:, 0] - 4.0) / 20) ** 2 + ((local[:, 1] + 8.0) / 15) ** 2 <= 1 + 1e-9)
    assert np.all(np.abs(local[:, 2] - 25.0) <= 12.5 + 1e-9)
    for blob in result.anatomy.cement_blobs:
        assert nearest_voxel_hu(result.ct, blob.to_world_points(blob.shape.centre_ras)).item() >= 1500
    # Every vertebra is held by the field of view.
    for vertebra in result.anatomy.vertebrae:
        count = np.count_nonzero(shape_mask(g, [vertebra.body]))
        assert count * voxel_cm3 == pytest.approx(vertebra.body.volume_mm3 / 1000.0, rel=0.01)


# --- switches: osteophytes and levels ---------------------------------------------------------------------


def test_osteophytes_are_bright_ridges_outside_the_body_at_both_anterior_rims():
    result = fine_phantom(osteophytes=True)
    anatomy, g = result.anatomy, result.ct.geometry
    assert result.truth.vbv_cm3 == fine_phantom().truth.vbv_cm3
    assert np.array_equal(result.body_mask, fine_phantom().body_mask)
    polygon = ellipse_polygon(20.0, 15.0)
    heights = []
    for ridge in anatomy.osteophytes:
        surface = ellipsoid_surface(ridge) - [4.0, -8.0, 25.0]
        assert np.all((surface[:, 0] / 20.0) ** 2 + (surface[:, 1] / 15.0) ** 2 > 1.0)
        assert min_distance_2d(surface[:, :2], polygon) >= 0.2 - 1e-3
        assert not np.any(shape_mask(g, [ridge]) & result.body_mask)
        assert nearest_voxel_hu(result.ct, ridge.centre_ras).item() > 400
        heights.append(ridge.centre_ras[2])
        assert ridge.centre_ras[1] > -8.0 + 15.0
    assert sorted(heights) == pytest.approx([12.5, 37.5], abs=1e-12)


@pytest.mark.parametrize("level", ["T5", "T8", "T12", "L3", "L5"])
def test_levels_give_typical_bodies_whose_truth_is_closed_form(level):
    """Body mask within 0.5% plus one 0.4 mm slice over the height (flat endplates parallel to the
    slices may gain or lose a slice of voxel centres: 2.9% for T5); cement within 1.5%."""
    spec = PhantomSpec.for_level(level, spacing_mm=FINE_MM, n_vertebrae=1)
    sizes = {"T5": (14.0, 12.0, 17.0), "T8": (15.5, 13.5, 19.0), "T12": (19.5, 15.5, 23.0)}
    sizes |= {"L3": (22.0, 16.0, 26.5), "L5": (24.0, 17.0, 27.0)}
    a, b, h = sizes[level]
    assert spec.body_semi_axes_mm == (a, b) and spec.body_height_mm == h
    assert spec.with_ribs == level.startswith("T") and spec.level == level
    result = make_phantom(spec)
    truth = result.truth
    assert truth.vbv_cm3 == pytest.approx(np.pi * a * b * h / 1000.0, rel=1e-12)
    voxel_cm3 = result.ct.geometry.voxel_volume_mm3 / 1000.0
    body_tolerance = 0.005 + FINE_MM[2] / h
    assert np.count_nonzero(result.body_mask) * voxel_cm3 == pytest.approx(truth.vbv_cm3, rel=body_tolerance)
    assert np.count_nonzero(result.cement_in_body_mask) * voxel_cm3 == pytest.approx(truth.bcv_cm3, rel=0.015)
    trabecular = result.anatomy.target.trabecular
    for blob in result.anatomy.cement_blobs:
        assert blob_clearance(blob, trabecular) >= 1.5 - 1e-3
    assert len(result.anatomy.target.ribs) == (2 if level.startswith("T") else 0)


def blob_clearance(blob, trabecular):
    (a, b), centre = trabecular.semi_axes_mm, np.asarray(trabecular.centre_ras)
    surface = ellipsoid_surface(blob) - centre
    wall = min_distance_2d(surface[:, :2], ellipse_polygon(a, b))
    return min(wall, 0.5 * trabecular.height_mm - np.abs(surface[:, 2]).max())


def test_level_l1_is_the_default_spec_and_changes_apply():
    assert PhantomSpec.for_level("L1") == PhantomSpec()
    assert PhantomSpec.for_level("t10", side="right").side == "right"
    with pytest.raises(CementLeakageError, match="level"):
        PhantomSpec.for_level("C3")


@pytest.mark.parametrize(
    "options",
    [
        {"leaks": ("sideways",)},
        {"leaks": ("anterior", "anterior")},
        {"leaks": ("paravertebral",)},
        {"compression": "crushed"},
        {"compression": "wedge", "compression_ratio": 0.5},
        {"compression": "biconcave", "schmorl_node": True},
        {"tilt_deg": 25.0},
        {"rotation_deg": float("nan")},
        {"cortex_hu": 50.0},
        {"leaks": ("disc superior",), "disc_height_mm": 3.5},
    ],
)
def test_bad_switches_raise_a_clear_error(options):
    with pytest.raises(CementLeakageError, match="phantom|disc|Schmorl"):
        make_phantom(PhantomSpec(n_vertebrae=1, spacing_mm=(1.5, 1.5, 1.5), **options))
