"""Measurement results as plain data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import __version__
from .evidence import GAO_2022_PSBCV, risk_note


@dataclass
class VertebraMeasurement:
    """Volumes (cm³) and ratios (%) of one treated vertebra.

    Points and the plane normal are RAS (mm, unit vector). ``exceeds_cutoff`` is
    ``psbcv_vbv_pct > cutoff_pct``; ``near_cutoff`` says the ratio lies within
    ``cutoff_margin.NEAR_CUTOFF_BAND_PT`` points of the cut-off, or above it by less than dishes
    that thick slices may leave out could lower it
    (``cutoff_margin.flag_may_fall_with_unseen_dishes``), where the flag is uncertain.
    """

    level: str
    side: str
    vbv_cm3: float
    bcv_cm3: float
    psbcv_cm3: float
    bcv_vbv_pct: float
    psbcv_vbv_pct: float
    cutoff_pct: float
    exceeds_cutoff: bool
    extravertebral_cement_cm3: float
    upper_ras: list[float]
    lower_ras: list[float]
    plane_normal_ras: list[float]
    body_voxels: int
    cement_in_body_voxels: int
    puncture_side_cement_voxels: int
    voxel_volume_mm3: float
    cutoff_sensitivity_pct: float = GAO_2022_PSBCV.sensitivity_pct
    cutoff_specificity_pct: float = GAO_2022_PSBCV.specificity_pct
    cutoff_auc: float = GAO_2022_PSBCV.auc
    cutoff_source: str = GAO_2022_PSBCV.citation
    interpretation: str = field(default_factory=risk_note)
    segmentation_source: str = "given"
    software_version: str = __version__
    input_sha256: str = ""
    input_source: str = ""
    parameters: dict = field(default_factory=dict)
    extravertebral_components: list[dict] = field(default_factory=list)
    """Each cement component outside the body: volume (cm³), location, side, distance to the
    body wall (mm), suggested Yeom type (see :mod:`leakage_components`)."""
    leakage_cement_cm3: float = 0.0
    """Listed extravertebral cement that is leakage (the pedicle tract of the puncture excluded)."""
    unlisted_extravertebral_cement_cm3: float = 0.0
    """Extravertebral cement in pieces too small to list or far from the body (cm³)."""
    warnings: list[str] = field(default_factory=list)
    near_cutoff: bool = False
    ct_blur_sigma_mm: float | None = None
    """The CT's point spread (SD, mm) measured on the cement bolus's edges and used to size the
    cement (:mod:`ct_blur`); None where the standard kernel's 0.6 mm was assumed (a small, thin
    or clipped bolus) or the masks were given."""
    points_off_centre_mm: list[float] | None = None
    """Side-to-side distance (mm) of the upper and lower endplate points from the body's centre
    line, positive towards the puncture side (:mod:`body_centre_line`); a warning names points
    more than 2.5 mm off. None when the body mask reaches too little of the height between them."""
    unseen_dish_vbv_pct: float | None = None
    """On CT slices over 1 mm, how much VBV could read low (% of VBV) if the endplates taken flat
    through their points are dished up to the first slices that could show them
    (:mod:`unseen_dishes`); a warning says so from 4%. None on thinner slices or given masks."""

    def as_dict(self) -> dict:
        """All fields as JSON-ready Python values."""
        return asdict(self)
