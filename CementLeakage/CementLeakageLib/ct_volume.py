"""A CT image in memory: Hounsfield units on a grid, with the identity of its source."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import CementLeakageError
from .geometry import VolumeGeometry


@dataclass
class CtVolume:
    """CT intensities in HU, indexed ``[k, j, i]``, on ``geometry`` (IJK-to-RAS, mm).

    ``source`` says where the image came from (a path, a node name or ``phantom``);
    ``sha256`` identifies the input file(s) (empty for data made in memory);
    ``metadata`` keeps identifiers such as DICOM UIDs. ``slice_thickness_mm`` is the width (mm)
    of the scanner's slice sensitivity along the slice normal when the source states it (DICOM
    SliceThickness, which may be less than the slice spacing); None takes it as the spacing.
    """

    array_hu: np.ndarray
    geometry: VolumeGeometry
    source: str = ""
    sha256: str = ""
    metadata: dict = field(default_factory=dict)
    slice_thickness_mm: float | None = None

    def __post_init__(self) -> None:
        self.slice_profile_share()

    def slice_profile_share(self) -> float:
        """The slice sensitivity's width as a share of the slice spacing (k): 1 when unknown.

        Raises :class:`CementLeakageError` when the slice thickness is not a positive number."""
        if self.slice_thickness_mm is None:
            return 1.0
        thickness_mm = positive_mm(self.slice_thickness_mm)
        if thickness_mm is None:
            raise CementLeakageError(
                f"the slice thickness of {self.source or 'the CT'} is {self.slice_thickness_mm!r} mm: "
                "give a positive thickness, or none to take the slice spacing"
            )
        spacing_mm = float(self.geometry.spacing_mm[2])
        return thickness_mm / spacing_mm if spacing_mm > 0.0 else 1.0


def positive_mm(value: object) -> float | None:
    """``value`` (a number or its text) as a positive, finite length in mm; None when it is not
    one (a slice thickness that is zero, negative, NaN or not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0.0 else None
