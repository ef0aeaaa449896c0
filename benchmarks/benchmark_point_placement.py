"""How much the measurement moves when an endplate point is marked off the endplate's surface.

The endplate points identify the vertebra and set the split plane, and the body's faces are
calibrated onto them (the blurred shell's faces lie outside the cortex; see
:func:`endplate_faces.calibrate_to_endplate_points`). A point marked inside the body or out in
the disc therefore moves the face it calibrates, unless the CT's slices are thin enough for the
endplate's surface to be read from it (:mod:`endplate_surfaces`: up to 1 mm), where a point
further than 0.35 mm from it is moved onto it. This benchmark takes the first phantoms of the
seed-2026 sweep (:mod:`benchmark_phantom_sweep`, drawn the same way), measures each with its
exact endplate points, then with one point at a time moved along the vertebral axis by each
offset (mm; positive is outward, into the disc; the split plane, which contains the axis, stays
where it is), and reports the change of VBV (%) and of PSBCV/VBV% (points) against the
measurement with the exact points, for the phantoms with slices up to 1 mm and the others;
then with the upper point moved 2 mm across the axis (anterior, posterior, left, right), which
tilts the frame the body is segmented in and, to the left or right, moves the split plane; and
with both points moved along the CT slices' normal onto the nearest slice's centre, where a
point clicked in a slice view aligned with the slices lies (Slicer snaps such a view to the
slices' centres), with whether the measurement warned about them (:mod:`slice_centred_points`).

Run: ``python benchmarks/benchmark_point_placement.py [--count 16] [--out FILE]``; writes
``results/point_placement.md`` by default. This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from benchmark_phantom_sweep import DEFAULT_SEED, describe, measured_on, sweep_specs

from CementLeakageLib.endplate_surfaces import THIN_SLICE_MAX_MM
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra
from CementLeakageLib.slice_centred_points import nearest_slice_centre_ras
from CementLeakageLib.vertebra_frame import vertebra_frame

OFFSETS_MM = (-1.0, -0.5, 0.5, 1.0)
"""Moves of one endplate point along the vertebral axis (mm; positive outward, into the disc)."""
SIDEWAYS_MM = 2.0
"""Move of the upper point across the axis (mm), in each of four directions."""
SIDEWAYS = ("anterior", "posterior", "left", "right")


def evaluate(spec: PhantomSpec) -> dict:
    """VBV and PSBCV/VBV% with the exact points and their changes with each point moved."""
    phantom = make_phantom(spec)
    truth = phantom.truth
    upper, lower = np.asarray(truth.upper_ras, float), np.asarray(truth.lower_ras, float)
    axis = (upper - lower) / np.linalg.norm(upper - lower)

    def measured(upper_ras: np.ndarray, lower_ras: np.ndarray) -> tuple[float, float, int]:
        """VBV (cm³), PSBCV/VBV% and how many warnings name a point on a slice's centre."""
        result = measure_vertebra(phantom.ct, upper_ras, lower_ras, truth.side, level=truth.level)
        named = sum("sits on the centre" in text for text in result.measurement.warnings)
        return result.measurement.vbv_cm3, result.measurement.psbcv_vbv_pct, named

    vbv, ratio, _ = measured(upper, lower)
    on_centres = [nearest_slice_centre_ras(phantom.ct.geometry, point) for point in (upper, lower)]
    centred = measured(*on_centres)
    # Outward: into the disc above the upper point, below the lower one.
    centre_offsets = tuple(
        outward * float(axis @ (moved - point))
        for moved, point, outward in zip(on_centres, (upper, lower), (1.0, -1.0))
    )
    frame = vertebra_frame(upper, lower)
    directions = {
        "anterior": frame.anterior_ras,
        "posterior": -frame.anterior_ras,
        "left": -np.sign(frame.lateral_ras[0]) * frame.lateral_ras,
        "right": np.sign(frame.lateral_ras[0]) * frame.lateral_ras,
    }
    sideways = {}
    for name in SIDEWAYS:
        moved = measured(upper + SIDEWAYS_MM * directions[name], lower)
        sideways[name] = (100.0 * (moved[0] / vbv - 1.0), moved[1] - ratio)
    changes = {}
    for end in ("upper", "lower"):
        for offset in OFFSETS_MM:
            if end == "upper":
                moved = measured(upper + offset * axis, lower)
            else:
                moved = measured(upper, lower - offset * axis)
            changes[(end, offset)] = (100.0 * (moved[0] / vbv - 1.0), moved[1] - ratio)
    return {
        "spec": describe(spec),
        "slice_mm": float(spec.spacing_mm[2]),
        "vbv_pct": 100.0 * (vbv / truth.vbv_cm3 - 1.0),
        "changes": changes,
        "sideways": sideways,
        "centred": (100.0 * (centred[0] / vbv - 1.0), centred[1] - ratio, centred[2]),
        "centre_offsets_mm": centre_offsets,
    }


def _by_slice_thickness(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """The rows of the phantoms with slices up to ``THIN_SLICE_MAX_MM`` and of the others, each
    group with its label, leaving out an empty group."""
    groups = []
    for thin in (True, False):
        group = [row for row in rows if (row["slice_mm"] <= THIN_SLICE_MAX_MM) is thin]
        if group:
            label = f"{'up to' if thin else 'over'} {THIN_SLICE_MAX_MM:g} mm ({len(group)} phantoms)"
            groups.append((label, group))
    return groups


def report(rows: list[dict], count: int) -> str:
    lines = [
        "# Endplate point placement",
        "",
        f"The first {count} phantoms of the seed-{DEFAULT_SEED} sweep; measured {measured_on()}.",
        "One endplate point at a time is moved along the vertebral axis (positive: outward, into the",
        "disc; negative: into the body). Changes are against the measurement with the exact points.",
        "",
        "| slices | point moved | median VBV change | range of VBV change | median PSBCV/VBV% change "
        "| largest PSBCV/VBV% change |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for slices, group in _by_slice_thickness(rows):
        for offset in OFFSETS_MM:
            vbv = [row["changes"][(end, offset)][0] for row in group for end in ("upper", "lower")]
            ratio = [row["changes"][(end, offset)][1] for row in group for end in ("upper", "lower")]
            largest = max(ratio, key=abs)
            spread = f"{min(vbv):+.2f} to {max(vbv):+.2f} %"
            lines.append(
                f"| {slices} | {offset:+.1f} mm | {statistics.median(vbv):+.2f} % | {spread} | "
                f"{statistics.median(ratio):+.2f} pt | {largest:+.2f} pt |"
            )
    lines += [
        "",
        f"The upper point moved {SIDEWAYS_MM:g} mm across the axis (all {len(rows)} phantoms; the split "
        "plane moves with it, so PSBCV/VBV% changes by design, most for left and right):",
        "",
        "| upper point moved | median VBV change | range of VBV change | median PSBCV/VBV% change "
        "| largest PSBCV/VBV% change |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in SIDEWAYS:
        vbv = [row["sideways"][name][0] for row in rows]
        ratio = [row["sideways"][name][1] for row in rows]
        largest = max(ratio, key=abs)
        spread = f"{min(vbv):+.2f} to {max(vbv):+.2f} %"
        lines.append(
            f"| {SIDEWAYS_MM:g} mm {name} | {statistics.median(vbv):+.2f} % | {spread} | "
            f"{statistics.median(ratio):+.2f} pt | {largest:+.2f} pt |"
        )
    lines += [
        "",
        "Both points moved along the slices' normal onto the nearest CT slice's centre, as clicked in a",
        "slice view aligned with the slices (moves along the axis, outward positive; points named: the",
        "points the measurement's warnings name as lying on a slice's centre, of two per phantom):",
        "",
        "| slices | largest move | median VBV change | range of VBV change | largest PSBCV/VBV% change "
        "| points named |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for slices, group in _by_slice_thickness(rows):
        vbv = [row["centred"][0] for row in group]
        largest = max((row["centred"][1] for row in group), key=abs)
        move = max((offset for row in group for offset in row["centre_offsets_mm"]), key=abs)
        named = sum(row["centred"][2] for row in group)
        lines.append(
            f"| {slices} | {move:+.2f} mm | {statistics.median(vbv):+.2f} % | {min(vbv):+.2f} to "
            f"{max(vbv):+.2f} % | {largest:+.2f} pt | {named} of {2 * len(group)} |"
        )
    header = " | ".join(f"{end} {offset:+.1f}" for end in ("upper", "lower") for offset in OFFSETS_MM)
    header += " | " + " | ".join(f"upper {name}" for name in SIDEWAYS)
    header += " | both on slice centres (upper, lower move mm)"
    lines += [
        "",
        "VBV change (%) of each phantom with each point moved by each offset (mm) along the axis, with",
        f"the upper point moved {SIDEWAYS_MM:g} mm across it, and with both points on slice centres:",
        "",
        f"| # | phantom | VBV vs truth, exact points | {header} |",
        "| --- | --- | --- | "
        + " | ".join("---" for _ in range(2 * len(OFFSETS_MM) + len(SIDEWAYS) + 1))
        + " |",
    ]
    for n, row in enumerate(rows, start=1):
        cells = " | ".join(
            f"{row['changes'][(end, offset)][0]:+.1f}" for end in ("upper", "lower") for offset in OFFSETS_MM
        )
        cells += " | " + " | ".join(f"{row['sideways'][name][0]:+.1f}" for name in SIDEWAYS)
        upper_move, lower_move = row["centre_offsets_mm"]
        cells += f" | {row['centred'][0]:+.1f} ({upper_move:+.2f}, {lower_move:+.2f})"
        lines.append(f"| {n} | {row['spec']} | {row['vbv_pct']:+.1f} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=16)
    default_out = Path(__file__).with_name("results") / "point_placement.md"
    parser.add_argument("--out", type=Path, default=default_out)
    arguments = parser.parse_args()
    rows = []
    for n, spec in enumerate(sweep_specs(arguments.count), start=1):
        rows.append(evaluate(spec))
        print(f"{n}/{arguments.count} {rows[-1]['spec']}", flush=True)
    text = report(rows, arguments.count)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
