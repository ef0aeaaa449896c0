"""The cement budget of a vertebra before surgery, from a preoperative CT.

The vertebral body is segmented as after surgery (bone 226-3071 HU, separated from pedicles
and neighbours); each published rule then gives the largest cement volume that keeps the
vertebra at or under its threshold (see :func:`risk_rules.cement_budget`).
"""

from __future__ import annotations

import numpy as np

from . import __version__
from .ct_checks import check_ct_intensities, check_points_in_volume
from .ct_volume import CtVolume
from .parameters import MeasurementParameters
from .pipeline import automatic_masks
from .risk_rules import cement_budget, get_rule, load_rules
from .split_plane import check_endplate_points, check_side, split_plane_from_endplates

PREEXISTING_CEMENT_WARNING_CM3 = 0.05
"""Cement-dense voxels inside the body (cm³) above which a 'preoperative' CT is questioned."""


def plan_vertebra(
    ct: CtVolume,
    upper_ras,
    lower_ras,
    side: str,
    *,
    level: str = "",
    parameters: MeasurementParameters | None = None,
    rule_names: list[str] | None = None,
) -> dict:
    """VBV (cm³) of the vertebra between the endplate midpoints (RAS mm) and its cement budgets.

    Returns plain data: ``vbv_cm3``, ``budgets`` (one per rule, ``max_cement_ml``), the
    points, the input identity and warnings. All rules are used when ``rule_names`` is None.
    """
    parameters = parameters or MeasurementParameters()
    side = check_side(side)
    upper, lower = check_endplate_points(upper_ras, lower_ras)
    check_points_in_volume(ct.geometry, upper, lower)
    split_plane_from_endplates(upper, lower, side)
    parameters, intensity_warnings = check_ct_intensities(ct, parameters)
    masks = automatic_masks(ct, upper, lower, parameters)
    body, cement, segmentation_warnings = masks.body, masks.cement, masks.warnings
    warnings = list(intensity_warnings) + list(segmentation_warnings)
    voxel_mm3 = float(np.prod(ct.geometry.spacing_mm))
    vbv_cm3 = float(body.sum()) * voxel_mm3 / 1000.0
    cement_cm3 = float((cement & body).sum()) * voxel_mm3 / 1000.0
    if cement_cm3 > PREEXISTING_CEMENT_WARNING_CM3:
        warnings.append(
            f"{cement_cm3:.2f} cm3 of cement-dense voxels are already in the body: "
            "is this a postoperative CT? Use 'measure' for those"
        )
    names = rule_names or list(load_rules())
    return {
        "level": level,
        "side": side,
        "vbv_cm3": vbv_cm3,
        "upper_ras": [float(v) for v in upper],
        "lower_ras": [float(v) for v in lower],
        "budgets": [cement_budget(get_rule(name), vbv_cm3) for name in names],
        "input_sha256": ct.sha256,
        "input_source": ct.source,
        "software_version": __version__,
        "parameters": parameters.as_dict(),
        "warnings": warnings,
        "body_mask": body,
    }
