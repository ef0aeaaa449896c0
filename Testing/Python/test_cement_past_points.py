"""Cement past an endplate point that outweighs the body's: a point marked in the body's cement
bolus is named instead of reading a low BCV and a large leak into the disc."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.cement_past_points import (
    MIN_VOLUME_CM3,
    cement_past_point_warnings,
    is_cement_past_point_warning,
)
from CementLeakageLib.leak_classes import ANTERIOR, DISC_INFERIOR, DISC_SUPERIOR
from CementLeakageLib.leakage_components import ExtravertebralComponent
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra


def component(location: str, volume_cm3: float, distance_mm: float = 0.0) -> ExtravertebralComponent:
    """A listed component of ``volume_cm3`` at ``location``, ``distance_mm`` from the body."""
    return ExtravertebralComponent(
        index=1,
        volume_cm3=volume_cm3,
        voxels=int(volume_cm3 * 1000),
        location=location,
        side="left",
        distance_to_body_mm=distance_mm,
        centroid_ras=[0.0, 0.0, 0.0],
        suggested_yeom_type="D",
        is_leakage=True,
        note="",
    )


@pytest.mark.parametrize(
    "components, bcv_cm3, named",
    [
        ([component(DISC_INFERIOR, 4.69)], 2.30, ["lower"]),  # the bolus below a point in it
        ([component(DISC_SUPERIOR, 2.5)], 2.0, ["upper"]),
        ([component(DISC_INFERIOR, 0.19)], 0.15, []),  # a planted leak, under 1 cm3
        ([component(DISC_INFERIOR, 1.5)], 3.0, []),  # a large leak, less than the body holds
        ([component(DISC_SUPERIOR, 4.0, distance_mm=3.0)], 2.0, []),  # the next vertebra's cement
        ([component(ANTERIOR, 4.0)], 2.0, []),  # not past a point
        ([component(DISC_SUPERIOR, 3.0), component(DISC_INFERIOR, 3.0)], 2.0, ["upper", "lower"]),
    ],
)
def test_cement_past_a_point_is_named_when_it_outweighs_the_body(components, bcv_cm3, named):
    warnings = cement_past_point_warnings(components, bcv_cm3)
    assert [text.split(" endplate point")[0].split()[-1] for text in warnings] == named
    assert all(is_cement_past_point_warning(text) for text in warnings)
    assert MIN_VOLUME_CM3 == 1.0


def test_a_point_marked_in_the_bolus_is_named():
    """A wedged L4 tilted 15 degrees, its lower point marked halfway up the body, in its cement
    bolus: the body is cut there but the bolus's blur reads as an endplate, so nothing said the
    point lies inside the body (VBV +9.7%, body Dice 0.53, BCV 2.30 of the 6.85 cm3 truth). The
    bolus below the point is listed as a 4.69 cm3 leak into the disc, more than the body holds,
    and named."""
    phantom = make_phantom(
        PhantomSpec.for_level("L4", tilt_deg=15, compression="wedge", compression_ratio=0.7)
    )
    truth = phantom.truth
    upper, lower = np.asarray(truth.upper_ras, float), np.asarray(truth.lower_ras, float)
    halfway = lower + 0.5 * (upper - lower)
    measured = measure_vertebra(phantom.ct, upper, halfway, truth.side, level=truth.level).measurement
    assert measured.bcv_cm3 < 0.5 * truth.bcv_cm3
    [warning] = [text for text in measured.warnings if is_cement_past_point_warning(text)]
    assert "past the lower endplate point" in warning
    [disc] = [c for c in measured.extravertebral_components if c["location"] == DISC_INFERIOR]
    assert f"({disc['volume_cm3']:.2f} cm3" in warning and disc["volume_cm3"] > measured.bcv_cm3


def test_points_on_their_endplates_name_no_cement_past_them():
    """The demo's L1 with its points where the phantom puts them and a leak into each disc."""
    phantom = make_phantom(PhantomSpec(leaks=("disc superior", "disc inferior")))
    truth = phantom.truth
    measured = measure_vertebra(phantom.ct, truth.upper_ras, truth.lower_ras, truth.side).measurement
    assert len([c for c in measured.extravertebral_components if c["location"].startswith("disc")]) == 2
    assert not [text for text in measured.warnings if is_cement_past_point_warning(text)]
