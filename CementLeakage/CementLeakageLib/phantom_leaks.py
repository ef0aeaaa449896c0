"""Planted cement leaks of the synthetic phantom and their analytic truth, in RAS millimetres.

Besides the paravertebral leak and the pedicle-tract tail (built in :mod:`phantom_anatomy`), a
phantom can carry small cement ellipsoids at the other locations of :mod:`leak_classes`:
``anterior`` (in front of the anterior body wall, at least 2 mm from it, on the midline),
``spinal canal`` (behind the posterior wall between the pedicles, at least 2 mm from the wall,
on the midline) and ``disc superior`` / ``disc inferior`` (a flat ellipsoid in the middle of
the adjacent disc, at least 1.5 mm from both endplates, shifted towards the puncture side).
Each is a separate connected component of cement. Positions are relative to the target body
before any tilt or rotation of the stack (the stack is turned afterwards as a whole).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import CementLeakageError
from .leak_classes import ANTERIOR, DISC_INFERIOR, DISC_SUPERIOR, SPINAL_CANAL
from .phantom_shapes import Ellipsoid, ImplicitShape

if TYPE_CHECKING:
    from .phantom import PhantomSpec

PLANTABLE_LOCATIONS = (ANTERIOR, SPINAL_CANAL, DISC_SUPERIOR, DISC_INFERIOR)
"""Locations ``PhantomSpec.leaks`` may name (the paravertebral leak and the pedicle tract have
their own switches, ``paravertebral_leak`` and ``pedicle_tail``)."""

ANTERIOR_SEMI_AXES_MM = (5.0, 2.5, 5.0)
"""R, A, S semi-axes (mm) of the anterior leak: 0.262 cm³."""
ANTERIOR_GAP_MM = 2.0
CANAL_SEMI_AXES_MM = (3.0, 2.0, 5.0)
"""R, A, S semi-axes (mm) of the spinal-canal leak: 0.126 cm³."""
CANAL_GAP_MM = 2.0
DISC_LEAK_SEMI_AXES_MM = (6.0, 5.0, 1.5)
"""R, A, S semi-axes (mm) of a disc leak (0.188 cm³); S shrinks in thin discs to keep the gap."""
DISC_LEAK_GAP_MM = 1.5
DISC_LEAK_MIN_SEMI_S_MM = 0.5


@dataclass
class PlantedLeak:
    """One piece of cement outside the target body: where it is and its analytic volume.

    ``location`` is a :data:`leak_classes.LOCATIONS` name, ``side`` ``left``, ``right`` or
    ``midline``; ``volume_cm3`` is the shape's closed-form volume; ``centre_ras`` its centre (RAS mm,
    the middle of the axis for the pedicle-tract cylinder).
    """

    location: str
    side: str
    volume_cm3: float
    centre_ras: np.ndarray


def check_leak_locations(leaks) -> tuple[str, ...]:
    """The requested planted-leak locations as a tuple, each once (raises CementLeakageError)."""
    if isinstance(leaks, str):
        leaks = (leaks,)
    names = tuple(str(name) for name in leaks)
    for name in names:
        if name not in PLANTABLE_LOCATIONS:
            raise CementLeakageError(
                f"unknown phantom leak location {name!r}: use any of {', '.join(PLANTABLE_LOCATIONS)} "
                "(the paravertebral leak and pedicle tract have their own switches)"
            )
    if len(set(names)) != len(names):
        raise CementLeakageError("a phantom leak location is named twice: name each location once")
    return names


def _touches(shape: Ellipsoid, others) -> bool:
    theta, phi = np.meshgrid(np.linspace(0, np.pi, 24), np.linspace(0, 2 * np.pi, 48, endpoint=False))
    unit = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)
    surface = unit.reshape(-1, 3) * shape.semi_axes_mm + shape.centre_ras
    return any(np.any(other.contains_points(surface)) for other in others)


def planted_leaks(
    spec: PhantomSpec, body_centre_ras: np.ndarray, avoid: tuple[ImplicitShape, ...] = ()
) -> tuple[tuple[str, str, Ellipsoid], ...]:
    """``(location, side, ellipsoid)`` for each location in ``spec.leaks``, in the order asked.

    ``body_centre_ras`` is the undeformed target body's centre (RAS mm); sizes come from
    ``spec`` (semi-axes, body and disc heights). ``avoid`` are solids (posterior elements) that
    a leak must not touch.
    """
    a, b = spec.body_semi_axes_mm
    h, disc = spec.body_height_mm, spec.disc_height_mm
    cx, cy, cz = (float(value) for value in body_centre_ras)
    sign = -1.0 if spec.side == "left" else 1.0
    result = []
    for location in spec.leaks:
        if location == ANTERIOR:
            semi = ANTERIOR_SEMI_AXES_MM
            shape = Ellipsoid((cx, cy + b + ANTERIOR_GAP_MM + semi[1], cz), semi)
            side = "midline"
        elif location == SPINAL_CANAL:
            semi = CANAL_SEMI_AXES_MM
            shape = Ellipsoid((cx, cy - b - CANAL_GAP_MM - semi[1], cz), semi)
            side = "midline"
        else:
            semi_s = min(DISC_LEAK_SEMI_AXES_MM[2], 0.5 * disc - DISC_LEAK_GAP_MM)
            if semi_s < DISC_LEAK_MIN_SEMI_S_MM:
                raise CementLeakageError(
                    f"the disc ({disc:g} mm) is too thin for a disc leak: use a disc of at least "
                    f"{2 * (DISC_LEAK_GAP_MM + DISC_LEAK_MIN_SEMI_S_MM):g} mm"
                )
            up = 1.0 if location == DISC_SUPERIOR else -1.0
            centre = (cx + sign * 0.25 * a, cy + 0.1 * b, cz + up * 0.5 * (h + disc))
            shape = Ellipsoid(centre, (*DISC_LEAK_SEMI_AXES_MM[:2], semi_s))
            side = spec.side
        if _touches(shape, avoid):
            raise CementLeakageError(
                f"the {location} leak touches the posterior elements in this body: use a larger body"
            )
        result.append((location, side, shape))
    return tuple(result)
