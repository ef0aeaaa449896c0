"""Several treated vertebrae of one CT, measured together.

Each level is measured on its own (its body, its cement inside that body); cement that lies
inside another measured level's body is that level's, never this level's extravertebral
cement, so adjacent treated levels do not take each other's cement.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .csv_text import column_separator
from .ct_volume import CtVolume
from .errors import CementLeakageError
from .measurement import bounding_box
from .parameters import MeasurementParameters
from .pipeline import VertebraResult, measure_vertebra
from .split_plane import check_side


@dataclass(frozen=True)
class LevelRequest:
    """One vertebra to measure: its label, endplate midpoints (RAS mm) and puncture side."""

    level: str
    upper_ras: np.ndarray
    lower_ras: np.ndarray
    side: str


def _point(value, what: str) -> np.ndarray:
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    try:
        point = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        point = np.zeros(0)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise CementLeakageError(f"{what} needs three numbers R,A,S in mm, got {value!r}")
    return point


def request_from_mapping(entry: dict, where: str) -> LevelRequest:
    """A request from ``{"level", "upper", "lower", "side"}`` (points as ``"R,A,S"`` or lists), or
    from CSV columns ``upper_r, upper_a, upper_s, lower_r, lower_a, lower_s`` (one number each, with
    a decimal point or a decimal comma)."""
    missing = [key for key in ("level", "side") if not str(entry.get(key, "")).strip()]
    if missing:
        raise CementLeakageError(f"{where} has no {' or '.join(missing)}: give level, upper, lower and side")
    points = {}
    for name in ("upper", "lower"):
        if entry.get(name) not in (None, ""):
            points[name] = _point(entry[name], f"{where} {name}")
        else:
            parts = [entry.get(f"{name}_{axis}") for axis in ("r", "a", "s")]
            if any(part in (None, "") for part in parts):
                raise CementLeakageError(f"{where} has no {name} point: give {name} as R,A,S (mm)")
            # One number per cell: a comma in it is a decimal mark (spreadsheets of many locales).
            parts = [part.strip().replace(",", ".") if isinstance(part, str) else part for part in parts]
            points[name] = _point(parts, f"{where} {name}")
    level = str(entry["level"]).strip()
    return LevelRequest(level, points["upper"], points["lower"], check_side(entry["side"]))


def read_level_requests(path: str | os.PathLike) -> list[LevelRequest]:
    """Levels from a JSON list (or ``{"levels": [...]}``) or a CSV with one row per level, its
    columns separated by commas, semicolons or tabs (whichever its header holds most of)."""
    path = Path(path)
    if not path.is_file():
        raise CementLeakageError(f"{path} does not exist: give the JSON or CSV file of levels")
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".json":
            document = json.loads(text)
            entries = document.get("levels", []) if isinstance(document, dict) else document
        else:
            lines = text.splitlines()
            entries = list(csv.DictReader(lines, delimiter=column_separator(lines)))
    except UnicodeDecodeError:
        raise CementLeakageError(
            f"{path.name} is not UTF-8 text: save it as UTF-8 (CSV UTF-8 or JSON)"
        ) from None
    except (ValueError, csv.Error) as error:
        raise CementLeakageError(f"{path.name} could not be read ({error}): check its format") from None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise CementLeakageError(f"{path.name} lists no levels: give one entry per level")
    requests = [request_from_mapping(entry, f"{path.name} entry {n + 1}") for n, entry in enumerate(entries)]
    check_distinct_levels(requests)
    return requests


def check_distinct_levels(requests: list[LevelRequest]) -> None:
    """Refuse two requests with the same level label (their files and segments would collide)."""
    labels = [request.level for request in requests]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise CementLeakageError(f"level {', '.join(repeated)} is given more than once: give each level once")


def measure_levels(
    ct: CtVolume,
    requests: list[LevelRequest],
    parameters: MeasurementParameters | None = None,
    given_masks: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[VertebraResult]:
    """Measure every requested level of ``ct``; ``given_masks`` maps a level to its (body, cement)
    masks when they are given instead of segmented. Results follow the order of ``requests``."""
    check_distinct_levels(requests)
    results = []
    for request in requests:
        body, cement = (given_masks or {}).get(request.level, (None, None))
        results.append(
            measure_vertebra(
                ct,
                request.upper_ras,
                request.lower_ras,
                request.side,
                level=request.level,
                parameters=parameters,
                body_mask=body,
                cement_mask=cement,
            )
        )
    if len(results) > 1:
        bodies = {request.level: result.body_mask for request, result in zip(requests, results)}
        automatic = {request.level for request in requests} - set(given_masks or {})
        voxel_cm3 = ct.geometry.voxel_volume_mm3 / 1000.0
        named = check_bodies_apart(bodies, voxel_cm3, automatic)
        for request, result in zip(requests, results):
            result.measurement.warnings.extend(named.get(request.level, []))
        _release_neighbours_cement(results)
    return results


SAME_BODY_SHARE = 0.5
"""Two levels whose bodies share this share of the smaller one or more mark the same vertebra
(the same points given twice under two names, or points of one level inside the other's body).
Neighbouring bodies share no voxel: a disc lies between them."""


def check_bodies_apart(
    bodies: dict[str, np.ndarray], voxel_cm3: float, automatic: set[str], only: str | None = None
) -> dict[str, list[str]]:
    """Refuse two levels' bodies (``bodies``: level to bool ``[k, j, i]`` mask, all on one grid of
    ``voxel_cm3`` voxels) that are mostly the same voxels where either level was segmented
    automatically (``automatic``); name any smaller overlap, and any overlap of bodies drawn by
    hand, which are measured as they are. Returns, by level, what its result should say: the
    cement where two bodies meet counts in both. With ``only``, the pairs that hold that level."""
    levels = list(bodies)
    boxes = {level: bounding_box(mask) for level, mask in bodies.items()}
    named: dict[str, list[str]] = {}
    for position, first in enumerate(levels):
        for second in levels[position + 1 :]:
            if only is not None and only not in (first, second):
                continue
            box = _intersection(boxes[first], boxes[second])
            if box is None:
                continue
            shared = int(np.count_nonzero(bodies[first][box] & bodies[second][box]))
            if not shared:
                continue
            sizes = {level: int(np.count_nonzero(bodies[level])) for level in (first, second)}
            share = shared / min(sizes.values())
            if share >= SAME_BODY_SHARE and automatic & {first, second}:
                raise CementLeakageError(
                    f"levels {first} and {second} mark the same vertebral body (their bodies share "
                    f"{100.0 * share:.0f}% of the smaller one): check each level's endplate points"
                )
            for level, other in ((first, second), (second, first)):
                percent = 100.0 * shared / sizes[level]
                named.setdefault(level, []).append(
                    f"the vertebral body shares {shared * voxel_cm3:.2f} cm3 ({percent:.0f}% of it) with "
                    f"level {other}'s, and the cement there counts in both: check the masks "
                    "where the two bodies meet and each level's endplate points"
                )
    return named


def _intersection(
    first: tuple[slice, slice, slice] | None, second: tuple[slice, slice, slice] | None
) -> tuple[slice, slice, slice] | None:
    """The box two ``[k, j, i]`` boxes share, or None."""
    if first is None or second is None:
        return None
    box = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(first, second))
    return None if any(part.start >= part.stop for part in box) else box


def _release_neighbours_cement(results: list[VertebraResult]) -> None:
    """Remove from each level's extravertebral cement what lies inside another level's body."""
    for index, result in enumerate(results):
        others = np.zeros_like(result.body_mask)
        for other_index, other in enumerate(results):
            if other_index != index:
                others |= other.body_mask
        taken = result.extravertebral_cement_mask & others
        if not taken.any():
            continue
        result.extravertebral_cement_mask = result.extravertebral_cement_mask & ~others
        result.cement_mask = result.cement_mask & ~(others & ~result.body_mask)
        measurement = result.measurement
        voxel_mm3 = measurement.voxel_volume_mm3
        measurement.extravertebral_cement_cm3 = (
            float(result.extravertebral_cement_mask.sum()) * voxel_mm3 / 1000.0
        )
        result.describe_extravertebral_cement()
        measurement.warnings.append(
            f"{taken.sum() * voxel_mm3 / 1000.0:.2f} cm3 of cement next to this vertebra lies in another "
            "measured level's body and is counted there"
        )
