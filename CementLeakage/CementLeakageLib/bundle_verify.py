"""Re-check an audit bundle: re-measure every level from its stored masks and points.

``verify`` needs only the bundle: the masks come from its ``.seg.nrrd`` on the grid they were
drawn on, the endplate points from its ``.mrk.json`` (Slicer stores them in LPS, read back as
RAS), the side, cut-off and segment names from ``results.json``. Every number is measured
again and compared with the stored one; a mask whose SHA-256 differs from the recorded one
was changed after the export, and a point that ``results.json`` states other than the markups
file's (``POINT_TOLERANCE_MM``) does not belong to the masks measured.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .case_export import read_case_bundle
from .errors import CementLeakageError
from .markups_files import read_endplate_markups_file
from .measurement import measure_masks
from .mrml_nodes import mask_sha256
from .parameters import MeasurementParameters
from .segmentation_files import read_segment_masks, read_segmentation_geometry

VERIFIED_QUANTITIES = (
    "vbv_cm3",
    "bcv_cm3",
    "psbcv_cm3",
    "bcv_vbv_pct",
    "psbcv_vbv_pct",
    "exceeds_cutoff",
    "body_voxels",
    "cement_in_body_voxels",
    "puncture_side_cement_voxels",
)
"""Quantities ``verify`` measures again (cm³, %, flag and voxel counts)."""

RELATIVE_TOLERANCE = 1e-9
"""Volumes and ratios match when they agree to this relative tolerance (the same voxels)."""

POINT_TOLERANCE_MM = 1e-6
"""An endplate point of ``results.json`` matches the one of the markups file within this distance
(mm): the markups file stores the same double-precision coordinates, in LPS."""


@dataclass
class QuantityCheck:
    """One stored number and the number measured again."""

    level: str
    quantity: str
    stored: object
    remeasured: object
    matches: bool


@dataclass
class BundleVerification:
    """The outcome of :func:`verify_bundle`: every check, and the ones that failed."""

    folder: str
    checks: list[QuantityCheck] = field(default_factory=list)

    @property
    def mismatches(self) -> list[QuantityCheck]:
        """The checks whose numbers differ."""
        return [check for check in self.checks if not check.matches]

    @property
    def all_match(self) -> bool:
        """Whether every number of every level was measured again unchanged."""
        return bool(self.checks) and not self.mismatches


def _same(stored, remeasured) -> bool:
    if isinstance(stored, bool) or isinstance(remeasured, bool) or isinstance(stored, str):
        return stored == remeasured
    try:
        return math.isclose(float(stored), float(remeasured), rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def _same_point(stored, markup_ras: np.ndarray) -> bool:
    """Whether ``stored`` (``results.json``'s R, A, S in mm) is the markups file's point."""
    try:
        point = np.asarray(stored, dtype=float)
    except (TypeError, ValueError):
        return False
    return point.shape == (3,) and float(np.linalg.norm(point - markup_ras)) <= POINT_TOLERANCE_MM


def verify_bundle(folder: str | os.PathLike) -> BundleVerification:
    """Measure every level of the bundle in ``folder`` again and compare with ``results.json``."""
    folder = Path(folder)
    document = read_case_bundle(folder)
    verification = BundleVerification(str(folder))
    for record in document.get("levels", []):
        level = record.get("level", "")
        files = record.get("files") or {}
        segments = record.get("segments") or {}
        if not files.get("segmentation") or not files.get("markups") or not segments:
            raise CementLeakageError(
                f"results.json does not name the files and segments of level {level!r}: "
                "export the case again with this version"
            )
        for role in ("segmentation", "markups"):
            if not (folder / files[role]).is_file():
                raise CementLeakageError(f"{files[role]} is missing from {folder}: the bundle is incomplete")
        segmentation = folder / files["segmentation"]
        geometry = read_segmentation_geometry(segmentation)
        names = {role: segments[role]["name"] for role in ("body", "cement")}
        masks = read_segment_masks(segmentation, list(names.values()), geometry)
        upper, lower = read_endplate_markups_file(folder / files["markups"], level or None)
        parameters = MeasurementParameters(**record.get("parameters", {}))
        measurement = measure_masks(
            masks[names["body"]],
            masks[names["cement"]],
            geometry,
            upper,
            lower,
            record["side"],
            level=level,
            parameters=parameters,
        ).as_dict()
        for quantity in VERIFIED_QUANTITIES:
            stored, again = record.get(quantity), measurement[quantity]
            verification.checks.append(QuantityCheck(level, quantity, stored, again, _same(stored, again)))
        # The points measured from are the markups file's; results.json must state the same.
        for name, markup in (("upper_ras", upper), ("lower_ras", lower)):
            stored = record.get(name)
            again = [float(value) for value in markup]
            verification.checks.append(QuantityCheck(level, name, stored, again, _same_point(stored, markup)))
        for role, name in names.items():
            stored = segments[role].get("mask_sha256")
            again = mask_sha256(masks[name])
            verification.checks.append(
                QuantityCheck(level, f"{role} mask SHA-256", stored, again, stored == again)
            )
    if not verification.checks:
        raise CementLeakageError(f"{folder} holds no measured level: nothing to verify")
    return verification


def format_verification(verification: BundleVerification) -> str:
    """A readable summary: each mismatch with both values, or that everything matches."""
    if verification.all_match:
        levels = sorted({check.level for check in verification.checks})
        return (
            f"{verification.folder}: all {len(verification.checks)} checks match "
            f"(levels {', '.join(level or '(unnamed)' for level in levels)})"
        )
    lines = [
        f"{verification.folder}: {len(verification.mismatches)} of {len(verification.checks)} checks differ"
    ]
    for check in verification.mismatches:
        lines.append(
            f"  {check.level or '(unnamed)'} {check.quantity}: stored {check.stored}, "
            f"measured again {check.remeasured}"
        )
    return "\n".join(lines)
