"""Endplates the segmentation cannot follow, named instead of giving a silently low VBV.

A faint cortex whose shell has gaps on thick slices: the endplates beyond the points fall
between the CT's slices. The phantom is number 11 of the seed-2027 sweep: a biconcave T6 at 90%
height, 300 HU cortex, point-sampled 0.7 x 0.7 x 2 mm voxels. Each dish lies 0.84 mm beyond its
endplate point, and the upper one wholly between two CT planes.

A shell that closes nowhere in 3D: a leak into the disc above a tilted T5 on 2 mm slices (phantom
23 of the seed-2033 sweep) opens its endplate, and its faces stay on the points. Leaks into both
discs of a biconcave T5 at 65% height (phantom 16) did the same until the faint leaks were taken
out of the shell too; it is now enclosed with its dishes.
"""

from __future__ import annotations

import numpy as np
from test_segmentation_anatomy import FAINT_BICONCAVE_T12

from CementLeakageLib.body_segmentation import UNCLOSED_SHELL_WARNING, unseen_endplates_warning
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra

FAINT_SHALLOW_DISHES = {
    "level": "T6",
    "side": "left",
    "spacing_mm": (0.7, 0.7, 2.0),
    "orientation": "flipped",
    "disc_height_mm": 4.716368065242172,
    "leaks": ("anterior", "disc superior"),
    "compression": "biconcave",
    "compression_ratio": 0.9039645458610935,
    "cortex_hu": 300.0,
    "rotation_deg": -4.003761777186462,
    "seed": 2038,
}


LEAK_INTO_THE_DISC_OVER_A_TILTED_T5 = {
    "level": "T5",
    "spacing_mm": (0.6, 0.6, 2.0),
    "leaks": ("spinal canal", "disc superior"),
    "basivertebral_foramen": True,
    "tilt_deg": -10.947908262016629,
    "osteophytes": True,
    "seed": 2056,
}


LEAKS_INTO_BOTH_DISCS_OF_A_DISHED_T5 = {
    "level": "T5",
    "side": "left",
    "spacing_mm": (0.7, 0.7, 2.0),
    "orientation": "lps",
    "disc_height_mm": 4.652653818878123,
    "cement_preset": "high",
    "leaks": ("disc superior", "disc inferior"),
    "compression": "biconcave",
    "compression_ratio": 0.6541752302683616,
    "seed": 2049,
}


def unseen_warnings(spec: PhantomSpec, phrase: str = "may lie between two slices") -> tuple[list[str], float]:
    """The measurement's warnings that hold ``phrase`` (by default, about endplates between the
    slices), and its VBV error (%) against the phantom's analytic truth."""
    phantom = make_phantom(spec)
    truth = phantom.truth
    result = measure_vertebra(phantom.ct, truth.upper_ras, truth.lower_ras, truth.side, level=truth.level)
    vbv_error_pct = 100.0 * (result.measurement.vbv_cm3 / truth.vbv_cm3 - 1.0)
    return [w for w in result.measurement.warnings if phrase in w], vbv_error_pct


def test_shallow_dishes_between_thick_slices_are_named_with_the_low_vbv():
    warnings, vbv_error_pct = unseen_warnings(PhantomSpec.for_level(**FAINT_SHALLOW_DISHES))
    assert len(warnings) == 1
    assert "2.0 mm slices" in warnings[0] and "thinner slices" in warnings[0]
    # The warning's direction: the dishes' rims are left out, VBV reads low (-3.2% measured: the
    # lower dish is read in the partial volume of the slice beyond it, the upper one is unseen).
    assert -6.0 < vbv_error_pct < 0.0


def test_thin_slices_are_not_named():
    # The same body on 1 mm slices: its endplates' surfaces are read.
    case = dict(FAINT_SHALLOW_DISHES, spacing_mm=(0.7, 0.7, 1.0))
    warnings, vbv_error_pct = unseen_warnings(PhantomSpec.for_level(**case))
    assert warnings == []
    assert abs(vbv_error_pct) <= 4.0


def test_a_faint_shell_enclosed_whole_on_thick_slices_is_not_named():
    # A tilted biconcave T12 at 61% height with a 300 HU cortex on 2 mm slices: its shell,
    # closed at the levels under the cortex's edge, encloses the body whole.
    warnings, vbv_error_pct = unseen_warnings(PhantomSpec.for_level(**FAINT_BICONCAVE_T12))
    assert warnings == []
    assert abs(vbv_error_pct) <= 4.0


def test_the_warning_names_the_cortex_level_and_the_slices():
    geometry = VolumeGeometry(ijk_to_ras=np.diag([-0.7, -0.7, 2.5, 1.0]), shape=(40, 64, 64))
    text = unseen_endplates_warning(193.4, 226.0, geometry)
    assert "edge at 193 HU" in text and "226 HU bone threshold" in text and "2.5 mm slices" in text


def test_a_shell_that_closes_nowhere_is_named():
    # The leak's halo is not shell beyond the points and opens the endplate under it: the shell
    # encloses the body at no level and radius, no rim is found slice by slice, and the faces
    # stay flat on the points. The endplates are flat: VBV +0.9% measured.
    warnings, vbv_error_pct = unseen_warnings(
        PhantomSpec.for_level(**LEAK_INTO_THE_DISC_OVER_A_TILTED_T5), "did not close"
    )
    assert warnings == [UNCLOSED_SHELL_WARNING]
    assert abs(vbv_error_pct) <= 4.0


def test_faint_leaks_into_both_discs_leave_a_dished_shell_closed():
    # On 2 mm slices the leaks read under the cement threshold and their blur bridged both discs:
    # the shell closed nowhere and the faces lay flat on the points, without the two 3 mm dishes
    # (VBV -18.9%). With the faint leaks out of the shell it is enclosed (VBV +3.7% measured, as
    # without the leaks).
    for leaks in (("disc superior", "disc inferior"), ()):
        case = dict(LEAKS_INTO_BOTH_DISCS_OF_A_DISHED_T5, leaks=leaks)
        warnings, vbv_error_pct = unseen_warnings(PhantomSpec.for_level(**case), "did not close")
        assert warnings == []
        assert abs(vbv_error_pct) <= 4.0
