"""Measurement parameters: intensity windows (HU) and the flag's cut-off (%)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import CementLeakageError
from .evidence import GAO_2022_PSBCV

CT_SCALE_TOP_HU = 3071.0
"""Top of the usual 12-bit CT scale (-1024..3071 HU)."""


@dataclass(frozen=True)
class MeasurementParameters:
    """Thresholds in Hounsfield units and the PSBCV/VBV% cut-off in percent."""

    cement_min_hu: float = 1500.0
    cement_max_hu: float = CT_SCALE_TOP_HU
    bone_min_hu: float = 226.0
    bone_max_hu: float = CT_SCALE_TOP_HU
    cutoff_pct: float = GAO_2022_PSBCV.cutoff_pct

    def __post_init__(self) -> None:
        if not self.cement_min_hu < self.cement_max_hu:
            raise CementLeakageError(
                f"cement threshold window is empty ({self.cement_min_hu:g} to {self.cement_max_hu:g} HU)"
            )
        if not self.bone_min_hu < self.bone_max_hu:
            raise CementLeakageError(
                f"bone threshold window is empty ({self.bone_min_hu:g} to {self.bone_max_hu:g} HU)"
            )
        if not self.bone_min_hu < self.cement_min_hu:
            raise CementLeakageError("the bone threshold must start below the cement threshold")
        if not 0.0 < self.cutoff_pct < 100.0:
            raise CementLeakageError(
                f"the cut-off must be a percentage between 0 and 100, got {self.cutoff_pct:g}"
            )

    def as_dict(self) -> dict:
        """The parameters as a plain dictionary (for JSON provenance)."""
        return asdict(self)
