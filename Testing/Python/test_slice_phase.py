"""Phantoms whose voxel grid lies elsewhere against the anatomy than the sweeps' own
(``PhantomSpec.grid_offset_voxels``): on thick slices and coarse pixels where the voxels fall
decides what the CT shows of the endplates, the disc and a faint cortex, and what the voxels
hold of the body. Each case read wrong before, on the
phantom sweep with the slice phase drawn at random (``benchmark_phantom_sweep.py
--random-slice-phase``) or on the slice-phase benchmark, or with another order of filling the
faces' slices on the CT grid; errors against the analytic truth.
"""

from __future__ import annotations

import numpy as np
from test_segmentation_anatomy import FAINT_BICONCAVE_T12, check
from test_unseen_endplates import FAINT_SHALLOW_DISHES

from CementLeakageLib.ct_volume import CtVolume
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra
from CementLeakageLib.vertebra_frame import vertebra_frame

VBV_TOLERANCE_PCT = 4.0
RATIO_TOLERANCE_PT = 0.7
LEAK_TOLERANCE_PCT = 10.0


def measured(spec: PhantomSpec) -> dict:
    """The errors of the automatic measurement of the phantom of ``spec``: VBV (%) and PSBCV/VBV%
    (points) against the analytic truth, and each planted leak's volume error (%, None when no
    component of its location class was found). For cases that miss a target the sweeps hold
    (body Dice, the flag) for reasons of their own, so that ``check`` cannot judge them."""
    phantom = make_phantom(spec)
    truth = phantom.truth
    result = measure_vertebra(phantom.ct, truth.upper_ras, truth.lower_ras, truth.side, level=truth.level)
    m = result.measurement
    leaks = {}
    for planted in truth.leaks:
        found = [c["volume_cm3"] for c in m.extravertebral_components if c["location"] == planted.location]
        best = min(found, key=lambda v: abs(v - planted.volume_cm3)) if found else None
        leaks[planted.location] = None if best is None else 100.0 * (best / planted.volume_cm3 - 1.0)
    return {
        "vbv_pct": 100.0 * (m.vbv_cm3 / truth.vbv_cm3 - 1.0),
        "ratio_pt": m.psbcv_vbv_pct - truth.psbcv_vbv_pct,
        "leaks": leaks,
    }


def test_a_shell_open_to_the_next_vertebra_does_not_take_the_disc():
    # A T6 on 2 mm slices with a leak into the disc above it (4.5 mm): one slice lies 0.4 mm
    # short of the next vertebra's endplate and reads over 130 HU across the disc, and the leak's
    # halo opens the body's upper endplate. The region the shell enclosed at 130 HU ran up to
    # the limit of the search beyond the upper point and took the disc and the leak with it:
    # VBV +21.8%, the leak into the disc not found. Measured now: VBV +2.3%, the leak +5.0%.
    spec = PhantomSpec.for_level(
        "T6",
        spacing_mm=(0.7, 0.7, 2.0),
        cement_preset="low",
        leaks=("anterior", "disc superior"),
        grid_offset_voxels=(0.50, 0.60, 0.92),
        seed=2069,
    )
    errors = measured(spec)
    assert abs(errors["vbv_pct"]) <= VBV_TOLERANCE_PCT
    assert abs(errors["ratio_pt"]) <= RATIO_TOLERANCE_PT
    assert errors["leaks"]["disc superior"] is not None
    assert abs(errors["leaks"]["disc superior"]) <= LEAK_TOLERANCE_PCT


def test_a_faint_cortex_mended_at_its_edge_keeps_the_cross_sections():
    # A biconcave T12 at 61% height with a 300 HU cortex, tilted 11 degrees, on oblique 2 mm
    # slices. Slices whose first rings came out small were mended with rings closed at 130 HU
    # that had not been moved to the cortex's edge (157 HU, under the bone threshold): 5% larger
    # than the true cross-section, VBV +5.5%. Moved to the edge: VBV +2.1%, body Dice 0.960.
    # Every target of the sweeps holds (test_segmentation_anatomy.check).
    spec = PhantomSpec.for_level(**dict(FAINT_BICONCAVE_T12, grid_offset_voxels=(0.93, 0.22, 0.79)))
    check(make_phantom(spec))


def test_the_faint_shallow_dishes_at_seven_eighths_of_a_slice_are_not_read_high():
    # The faint biconcave T6 of test_unseen_endplates with its grid seven eighths of a slice
    # further along (position 7 of the slice-phase benchmark): its mended slices lay 0.3 mm
    # outside the cortex's edge, VBV +6.1% and the flag wrong. Measured now: VBV +1.6%, PSBCV/VBV%
    # 0.29 points low.
    spec = PhantomSpec.for_level(**dict(FAINT_SHALLOW_DISHES, grid_offset_voxels=(0.37, 0.29, 0.41 + 7 / 8)))
    errors = measured(spec)
    assert abs(errors["vbv_pct"]) <= VBV_TOLERANCE_PCT
    assert abs(errors["ratio_pt"]) <= RATIO_TOLERANCE_PT


def test_a_shell_opened_by_leaks_into_both_discs_keeps_every_column():
    # A biconcave L1 at 80% height on 2 mm slices, with leaks into both discs. Their halos open
    # both endplates, and the shell encloses no interior: between its faces it holds the runs of
    # trabecular bone above its level. Moving the faces onto the points took as much off every
    # run, and the columns that held only short runs were lost from top to bottom: VBV -5.9%, with
    # no warning. Measured now: VBV -3.1%, and every target of the sweeps holds.
    spec = PhantomSpec.for_level(
        "L1",
        side="right",
        spacing_mm=(0.7, 0.7, 2.0),
        orientation="flipped",
        cement_preset="low",
        leaks=("disc superior", "disc inferior"),
        compression="biconcave",
        compression_ratio=0.80,
        basivertebral_foramen=True,
        rotation_deg=1.7,
        seed=2077,
        grid_offset_voxels=(0.41, 0.59, 0.85),
    )
    check(make_phantom(spec))


def test_the_body_keeps_its_volume_when_moved_onto_coarse_pixels():
    # A T6 with a 300 HU cortex on 1 x 1 x 1.25 mm voxels. The CT voxels' coverage of the body
    # found on the 0.5 mm frame grid, sampled at their centres in the slice plane, added up to
    # 1.6% less than that body (where the 1 mm pixels fall against the outline, alike in every
    # slice), and the mask was filled to it: VBV -4.0%. It now holds the body's own volume:
    # VBV -2.4%, and every target of the sweeps holds.
    spec = PhantomSpec.for_level(
        "T6",
        spacing_mm=(1.0, 1.0, 1.25),
        cement_preset="low",
        leaks=("spinal canal",),
        cortex_hu=300.0,
        rotation_deg=6.154,
        disc_height_mm=3.477,
        seed=2052,
        grid_offset_voxels=(0.096, 0.071, 0.226),
    )
    check(make_phantom(spec))


def test_a_strip_a_tilted_face_leaves_open_does_not_bend_its_fit():
    # A T10 with osteophytes tilted 9 degrees on 2 mm slices, its faces terraced where the slices
    # cross them, and its lower face open 1-5 mm deep along one strip where no slice caught the
    # cortex. The surface fitted to the faces, from which the overshoot is read on the axis, still
    # held part of the strip after three rounds of the outlier test and lay 0.6 mm inward there:
    # every column stayed beyond its endplate, VBV +3.8% and PSBCV/VBV% 0.79 points low, with no
    # warning. The fit now runs until the columns it leaves out settle: VBV +1.9%, and every
    # target of the sweeps holds.
    spec = PhantomSpec.for_level(
        "T10",
        side="right",
        spacing_mm=(0.6, 0.6, 2.0),
        cement_preset="high",
        leaks=("anterior", "spinal canal", "disc superior"),
        osteophytes=True,
        tilt_deg=-8.913,
        seed=2059,
        grid_offset_voxels=(0.892, 0.889, 0.587),
    )
    check(make_phantom(spec))


def test_a_faint_dish_is_read_through_the_thin_profile_of_its_slice():
    # The faint biconcave T6 at 90% height (seed 2027 #11) on 2 mm slices that are about 1 mm
    # thick (the phantom's point-sampled profile, which its CT states): the shell encloses it only
    # with holes, and its lower 0.84 mm dish, whose rim reaches 0.43 mm into the first slice
    # beyond the point, reads 0.86 mm from the cortex's partial volume there. Read as a profile
    # as wide as the spacing, or not read on a shell with holes, it was taken flat: VBV -5.5%,
    # PSBCV/VBV% +0.87 points; now -3.2% and +0.52.
    check(make_phantom(PhantomSpec.for_level(**FAINT_SHALLOW_DISHES)))


def test_a_faint_retry_shell_whose_faces_the_slices_place_is_kept():
    # The same T6 with its slices a random fraction along (seed 2027, random phase): no shell
    # closes until the faint leak into the disc above is taken out of it, and what that shell holds
    # beyond the points (the 1 mm upper dish its ring shows, the lower face flat on its point)
    # fell short of the rims' share it had to hold. Both faces placed by the slices, it is kept:
    # VBV -4.7% -> -2.8%, PSBCV/VBV% +0.86 -> +0.51 points.
    offset = (0.15701976845671473, 0.15383824135704982, 0.7688849446825711)
    check(make_phantom(PhantomSpec.for_level(**dict(FAINT_SHALLOW_DISHES, grid_offset_voxels=offset))))


def test_a_faint_retry_shell_with_one_face_placed_by_the_slices_is_kept():
    # The same T6 averaged over each 2 mm slice, its grid six eighths of a slice along (the
    # slice-phase benchmark): no shell closes until the faint leak into the disc above is taken
    # out of it. The slices place that shell's lower face (its 0.84 mm dish read in the slice
    # beyond the point) but not its upper one, where the leak lies over the axis, and what it
    # holds beyond the points falls short of the rims' share. It was dropped for faces on the
    # points: VBV -6.3%, PSBCV/VBV% +0.92 points, body Dice 0.946. Kept: VBV -1.8%, +0.26 points,
    # Dice 0.963, and every target holds.
    offset = (0.37, 0.29, 0.41 + 6 / 8)
    spec = PhantomSpec.for_level(**dict(FAINT_SHALLOW_DISHES, grid_offset_voxels=offset, slice_averaged=True))
    check(make_phantom(spec))


def test_a_face_taken_flat_within_a_slice_is_filled_from_the_outline_inward():
    # The biconcave T12 at 90% height (the biconcave grid's, seed 7) averaged over each 2 mm
    # slice, its grid three eighths of a slice along (the slice-phase benchmark). A face taken
    # flat within a slice covers that slice's voxels alike, and they were taken from the axis
    # outward, where a dish holds least of the body: body Dice 0.941 against the voxel-centre
    # truth. Taken from the outline inward, cement first: Dice 0.958, VBV +1.0% either way, and
    # every target holds.
    spec = PhantomSpec.for_level(
        "T12",
        compression="biconcave",
        compression_ratio=0.9,
        spacing_mm=(0.7, 0.7, 2.0),
        seed=7,
        grid_offset_voxels=(0.37, 0.29, 0.41 + 3 / 8),
        slice_averaged=True,
    )
    check(make_phantom(spec))


def test_a_body_short_of_its_wholly_covered_voxels_leaves_out_its_outline():
    # A wedged L2 with a high fill on 0.8 x 0.8 x 0.5 mm voxels (seed 2026, random phase): the
    # volume it keeps on the CT grid is 540 voxels fewer than those it covers wholly (its outline
    # sampled at the pixels' centres). Taken from the outline inward, as the faces' slices are
    # now, those voxels left out a column along the axis, and the cement there read as a
    # paravertebral leak of 0.104 cm3 where none was planted. Taken from the axis outward, they
    # leave out a sliver of the outline, and every target holds.
    spec = PhantomSpec.for_level(
        "L2",
        side="right",
        spacing_mm=(0.8, 0.8, 0.5),
        cement_preset="high",
        leaks=("anterior", "disc inferior"),
        compression="wedge",
        compression_ratio=0.7287,
        schmorl_node=True,
        basivertebral_foramen=True,
        osteophytes=True,
        rotation_deg=6.719,
        seed=2035,
        grid_offset_voxels=(0.8406, 0.7355, 0.4241),
    )
    check(make_phantom(spec))


def test_cement_in_a_face_s_partial_slice_stays_in_the_body():
    # The flat T6 of the slice-phase benchmark, sampled at the voxel centres three eighths of a
    # slice along, with no leaks, and cement painted within 6 mm of the axis from mid-height up
    # to the upper endplate (2700 HU at the voxels whose centres lie in the body). The upper face
    # falls within a 2 mm slice whose voxels the body covers alike; filled from the outline
    # inward alone, the 231 cement voxels of that slice were left out as a leak into the disc.
    # Cement is taken first: all of it lies in the body, and no leakage is reported.
    spec = PhantomSpec.for_level(
        **dict(
            FAINT_SHALLOW_DISHES,
            cortex_hu=PhantomSpec().cortex_hu,
            compression="none",
            compression_ratio=1.0,
            leaks=(),
            paravertebral_leak=False,
            grid_offset_voxels=(0.37, 0.29, 0.41 + 3 / 8),
        )
    )
    phantom = make_phantom(spec)
    truth, geometry = phantom.truth, phantom.ct.geometry
    frame = vertebra_frame(truth.upper_ras, truth.lower_ras)
    voxels = np.nonzero(phantom.body_mask)
    along = frame.to_frame(geometry.voxel_centers_ras(voxels))
    painted = np.zeros_like(phantom.body_mask)
    reach = (np.hypot(along[:, 0], along[:, 1]) <= 6.0) & (along[:, 2] >= 0.5 * frame.height_mm)
    painted[tuple(axis[reach] for axis in voxels)] = True
    hu = phantom.ct.array_hu.copy()
    hu[painted] = 2700.0
    ct = CtVolume(hu, geometry, source="phantom", slice_thickness_mm=phantom.ct.slice_thickness_mm)
    result = measure_vertebra(ct, truth.upper_ras, truth.lower_ras, truth.side, level=truth.level)
    assert np.count_nonzero(painted) == 1155
    assert np.count_nonzero(painted & ~result.body_mask) == 0
    assert [c for c in result.measurement.extravertebral_components if c["is_leakage"]] == []
