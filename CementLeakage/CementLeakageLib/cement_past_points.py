"""Cement past an endplate point that outweighs the cement inside the body: a point marked in the
vertebral body's cement instead of on its endplate.

The body is cut at the marked points, so a point clicked inside the body takes the rest of it out
of VBV, and the cement there out of BCV: that cement then lies past the point, over the body's
outline, and is listed as a leak into the disc (:mod:`leakage_components`). Where the body goes on
past such a point the segmentation names it (:mod:`body_beyond_points`), but a point in the
cement bolus can hide that: the bolus's blur reads as an endplate. A wedged L4 tilted 15 degrees,
its lower point marked halfway up the body in its bolus, read VBV +9.7% (body Dice 0.53) with a
4.69 cm3 "leak into the disc below" against 2.30 cm3 inside the body, and nothing named.

A leak into a disc that touches the body and holds more cement than the body itself, and at least
``MIN_VOLUME_CM3``, is named here. The sweeps' planted leaks into a disc hold 0.19 cm3, and
cement that crosses an endplate through a fracture rarely outweighs what stays in the body.
"""

from __future__ import annotations

from collections.abc import Iterable

from .leak_classes import DISC_INFERIOR, DISC_SUPERIOR
from .leakage_components import ExtravertebralComponent

MIN_VOLUME_CM3 = 1.0
"""Least volume (cm3) of cement past a point, listed as a leak into the disc, that is named."""
TOUCH_MM = 1.0
"""Largest distance (mm) from the body at which such cement counts as part of it cut off by the
point: the next vertebra's cement lies a disc away."""
WARNING_OPENING = "more cement lies past the"
"""How each of these warnings begins (:func:`is_cement_past_point_warning`)."""

_POINTS = {DISC_SUPERIOR: ("upper", "above"), DISC_INFERIOR: ("lower", "below")}


def cement_past_point_warnings(components: Iterable[ExtravertebralComponent], bcv_cm3: float) -> list[str]:
    """A warning for each endplate point past which a component listed as a leak into the disc
    (``components``, volumes in cm3) touches the body and holds more cement than the body does
    (``bcv_cm3``), and at least ``MIN_VOLUME_CM3``."""
    warnings = []
    for location, (point, beyond) in _POINTS.items():
        volumes = [
            component.volume_cm3
            for component in components
            if component.location == location and component.distance_to_body_mm <= TOUCH_MM
        ]
        volume = max(volumes, default=0.0)
        if volume >= MIN_VOLUME_CM3 and volume > bcv_cm3:
            warnings.append(
                f"{WARNING_OPENING} {point} endplate point ({volume:.2f} cm3, listed as a leak into the "
                f"disc {beyond} it) than inside the vertebral body ({bcv_cm3:.2f} cm3): the point may lie "
                "inside the body, in its cement, and VBV, BCV and the leak are then wrong; mark the point "
                "on the endplate's surface against the disc, in a sagittal view"
            )
    return warnings


def is_cement_past_point_warning(text: str) -> bool:
    """Whether ``text`` is one of :func:`cement_past_point_warnings`'s warnings."""
    return text.startswith(WARNING_OPENING)
