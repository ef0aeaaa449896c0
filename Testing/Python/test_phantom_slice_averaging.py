"""Slice-averaged phantom rendering: each voxel holds the share of a solid over its whole extent,
so that a layer thinner than a thick slice keeps its volume wherever it lies in the slice.

Painted volume = sum of the voxels' shares times the voxel volume, compared with the solid's
closed-form volume.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.phantom import (
    CEMENT_MEAN_HU,
    DISC_HU,
    ORIENTATIONS,
    PhantomSpec,
    _Canvas,
    _rotation,
    make_phantom,
    phantom_slice_thickness_mm,
)
from CementLeakageLib.phantom_shapes import Ellipsoid, EllipticCylinder, Rotated

LAYER = (10.0, 10.0, 0.6)  # a 1.2 mm thick cement sheet, semi-axes in mm
LAYER_MM3 = 4.0 / 3.0 * np.pi * 10.0 * 10.0 * 0.6


def grid(spacing_mm: tuple[float, float, float]) -> VolumeGeometry:
    """A 40 mm cube around the origin, its voxel centres off the solids' centres."""
    shape = tuple(int(40 / s) for s in spacing_mm[::-1])
    return VolumeGeometry.from_origin_spacing_directions(
        np.array([-20.3, -20.1, -20.17]), np.array(spacing_mm), np.eye(3), shape
    )


def painted_mm3(geometry: VolumeGeometry, solid, slice_averaged: bool) -> float:
    canvas = _Canvas(geometry, 0.0, slice_averaged)
    canvas.paint(solid, 1.0)
    return float(canvas.image.sum()) * geometry.voxel_volume_mm3


@pytest.mark.parametrize("spacing_mm", [(0.5, 0.5, 2.0), (0.6, 0.6, 1.5), (1.0, 1.0, 2.0)])
@pytest.mark.parametrize("offset_mm", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_a_thin_layer_keeps_its_volume_anywhere_in_a_thick_slice(spacing_mm, offset_mm):
    layer = Ellipsoid((0.0, 0.0, offset_mm), LAYER)
    assert painted_mm3(grid(spacing_mm), layer, True) == pytest.approx(LAYER_MM3, rel=0.03)


def test_sampling_at_the_slice_centres_does_not():
    # The default rendering samples around each voxel's centre: the same sheet on 2 mm slices
    # comes out between a sixth and more than twice its volume depending on where it lies.
    volumes = [
        painted_mm3(grid((0.5, 0.5, 2.0)), Ellipsoid((0.0, 0.0, offset), LAYER), False) / LAYER_MM3
        for offset in (0.0, 0.5, 1.0)
    ]
    assert max(volumes) > 2.0 and min(volumes) < 0.2


@pytest.mark.parametrize("spacing_mm", [(0.5, 0.5, 2.0), (1.0, 1.0, 1.5)])
@pytest.mark.parametrize("offset_mm", [0.0, 0.5, 1.0])
def test_cement_keeps_its_volume_in_the_default_rendering_too(spacing_mm, offset_mm):
    # Cement is painted averaged over each voxel whatever the mode, so that a thin leak's
    # intensity holds the volume its truth counts.
    geometry = grid(spacing_mm)
    canvas = _Canvas(geometry, 0.0, slice_averaged=False)
    canvas.paint(Ellipsoid((0.0, 0.0, offset_mm), LAYER), 1.0, box_averaged=True)
    painted = float(canvas.image.sum()) * geometry.voxel_volume_mm3
    assert painted == pytest.approx(LAYER_MM3, rel=0.03)


THINNEST_DISC_LEAK = (6.0, 5.0, 0.5)  # the disc leak of a 4 mm disc: 1 mm thick, 0.063 cm3
THINNEST_DISC_LEAK_MM3 = 4.0 / 3.0 * np.pi * 6.0 * 5.0 * 0.5


@pytest.mark.parametrize(
    "spacing_mm", [(0.8, 0.8, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (1.0, 1.0, 1.5), (0.6, 0.6, 2.0)]
)
@pytest.mark.parametrize("offset_mm", [0.0, 0.13, 0.25, 0.4])
def test_a_lens_thinner_than_a_voxel_holds_its_volume_as_cement(spacing_mm, offset_mm):
    # Averaged at points 0.5 mm apart, this lens held up to 14% more than its volume (its rim,
    # a twentieth of a millimetre across, spread over each point's half millimetre). The share
    # of points 0.1 mm apart inside it holds -1.0% to +0.3% of it here.
    geometry = grid(spacing_mm)
    canvas = _Canvas(geometry, 0.0, slice_averaged=False)
    canvas.paint(Ellipsoid((0.11, -0.07, offset_mm), THINNEST_DISC_LEAK), 1.0, box_averaged=True)
    painted = float(canvas.image.sum()) * geometry.voxel_volume_mm3
    assert painted == pytest.approx(THINNEST_DISC_LEAK_MM3, rel=0.015)


@pytest.mark.parametrize("degrees", [4.0, 10.0])
def test_a_tilted_lens_through_the_slice_centres_holds_its_volume(degrees):
    # Inside a flat lens the signed distance is the distance to its rim (-2 mm under a face 0.3
    # mm away), so it cannot tell the voxels its faces cross: taken from it, this lens held +19%.
    geometry = grid((0.7, 0.7, 2.0))
    centre = (0.11, -0.07, -0.17)  # on a slice's centre plane
    about_r = tuple(map(tuple, _rotation(degrees, 0.0)))
    lens = Rotated(Ellipsoid(centre, (6.0, 5.0, 0.85)), about_r, centre)
    canvas = _Canvas(geometry, 0.0, slice_averaged=False)
    canvas.paint(lens, 1.0, box_averaged=True)
    painted = float(canvas.image.sum()) * geometry.voxel_volume_mm3
    assert painted == pytest.approx(lens.volume_mm3, rel=0.01)


@pytest.mark.parametrize("spacing_mm", [(0.7, 0.7, 1.0), (0.6, 0.6, 2.0)])
@pytest.mark.parametrize("orientation", ["axial", "oblique"])
def test_cement_is_averaged_only_where_its_surface_crosses_a_voxel(spacing_mm, orientation):
    # Voxels whose centre lies more than half a diagonal inside hold all cement, more than
    # half a diagonal outside none (the blob's distance is exact off its rims); the blob keeps
    # its volume on the phantoms' oblique grid too.
    axial = grid(spacing_mm)
    geometry = VolumeGeometry.from_origin_spacing_directions(
        axial.origin_ras, axial.spacing_mm, ORIENTATIONS[orientation], axial.shape
    )
    blob = Ellipsoid((1.0, 2.0, -0.5), (8.0, 6.0, 5.0))
    canvas = _Canvas(geometry, 0.0, slice_averaged=False)
    canvas.paint(blob, 1.0, box_averaged=True)
    centres = geometry.ijk_to_ras_points(np.indices(geometry.shape).reshape(3, -1)[::-1].T.astype(float))
    distance = blob.signed_distance_mm(*centres.T).reshape(geometry.shape)
    half_diagonal = 0.5 * float(np.linalg.norm(spacing_mm))
    assert np.all(canvas.image[distance < -half_diagonal] == 1.0)
    assert np.all(canvas.image[distance > half_diagonal] == 0.0)
    painted = float(canvas.image.sum()) * geometry.voxel_volume_mm3
    assert painted == pytest.approx(blob.volume_mm3, rel=0.002)


@pytest.mark.parametrize("spacing_mm", [(0.8, 0.8, 2.0), (1.0, 1.0, 1.5), (0.6, 0.6, 1.25)])
def test_a_phantoms_disc_leak_holds_its_volume_in_the_default_rendering(spacing_mm):
    # The same T8 with and without a leak into the disc above (no blur, no noise): the CT's
    # excess intensity over the disc, in units of cement against disc, is the leak's volume.
    # Sampled around the voxel centres it held 77% of it on 2 mm slices and 107% on 1.5 mm.
    spec = PhantomSpec.for_level("T8", spacing_mm=spacing_mm, blur_sigma_mm=0.0, noise_sd_hu=0.0)
    with_leak = make_phantom(replace(spec, leaks=("disc superior",)))
    without = make_phantom(spec)
    excess = with_leak.ct.array_hu.astype(float) - without.ct.array_hu
    held_mm3 = excess.sum() * with_leak.ct.geometry.voxel_volume_mm3 / (CEMENT_MEAN_HU - DISC_HU)
    (leak,) = [leak for leak in with_leak.truth.leaks if leak.location == "disc superior"]
    # 3%: the cement's texture (SD 120 HU) and the endplates under the leak's rim.
    assert held_mm3 / 1000.0 == pytest.approx(leak.volume_cm3, rel=0.03)


@pytest.mark.parametrize("spacing_mm", [(0.5, 0.5, 0.5), (0.5, 0.5, 2.0), (1.0, 1.0, 2.0)])
def test_a_body_sized_cylinder_keeps_its_volume(spacing_mm):
    cylinder = EllipticCylinder((0.0, 0.0, 0.4), (8.0, 6.0), 10.3)
    assert painted_mm3(grid(spacing_mm), cylinder, True) == pytest.approx(np.pi * 48.0 * 10.3, rel=0.01)


def test_the_switch_changes_only_the_rendering():
    spec = PhantomSpec(spacing_mm=(0.8, 0.8, 2.0), n_vertebrae=1)
    centre_sampled, averaged = make_phantom(spec), make_phantom(replace(spec, slice_averaged=True))
    assert averaged.truth.vbv_cm3 == centre_sampled.truth.vbv_cm3
    assert averaged.truth.psbcv_vbv_pct == centre_sampled.truth.psbcv_vbv_pct
    assert np.array_equal(averaged.body_mask, centre_sampled.body_mask)
    assert not np.array_equal(averaged.ct.array_hu, centre_sampled.ct.array_hu)


@pytest.mark.parametrize("slice_averaged", [False, True])
@pytest.mark.parametrize("spacing_mm", [(0.7, 0.7, 2.0), (0.5, 0.5, 1.5)])
def test_the_ct_states_the_width_over_which_a_face_parallel_to_its_slices_ramps(slice_averaged, spacing_mm):
    # A flat face (the top of a wide cylinder at z = 0.03 mm) stepped across one slice's centre:
    # the slice's share of the solid falls linearly from 1 to 0 over the stated slice thickness.
    geometry = grid(spacing_mm)
    spec = replace(PhantomSpec(), spacing_mm=spacing_mm, slice_averaged=slice_averaged)
    thickness_mm = phantom_slice_thickness_mm(spec, geometry)
    expected_mm = spacing_mm[2] if slice_averaged else float(np.prod(spacing_mm)) ** (1.0 / 3.0)
    assert thickness_mm == pytest.approx(expected_mm, rel=1e-9)
    k = geometry.shape[0] // 2
    centre_z = float(geometry.ijk_to_ras_points(np.array([[0.0, 0.0, k]]))[0, 2])
    shares = []
    for beyond_mm in np.linspace(-0.3, 0.3, 7) * thickness_mm:
        canvas = _Canvas(geometry, 0.0, slice_averaged)
        top = centre_z + beyond_mm
        canvas.paint(EllipticCylinder((0.0, 0.0, top - 5.0), (15.0, 15.0), 10.0), 1.0)
        shares.append(float(canvas.image[k, geometry.shape[1] // 2, geometry.shape[2] // 2]))
    # Each step of a tenth of the thickness moves the share by a tenth.
    assert np.diff(shares) == pytest.approx(np.full(6, 0.1), abs=0.01)


def test_a_phantom_ct_carries_its_slice_thickness():
    spec = replace(PhantomSpec(), spacing_mm=(0.7, 0.7, 2.0))
    ct = make_phantom(spec).ct
    assert ct.slice_thickness_mm == pytest.approx(0.98 ** (1.0 / 3.0), rel=1e-9)
    assert ct.slice_profile_share() == pytest.approx(0.98 ** (1.0 / 3.0) / 2.0, rel=1e-9)
    averaged = make_phantom(replace(spec, slice_averaged=True)).ct
    assert averaged.slice_thickness_mm == pytest.approx(2.0)
    assert averaged.slice_profile_share() == pytest.approx(1.0)
