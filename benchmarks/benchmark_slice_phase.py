"""Where thick slices fall against the endplates: a few bodies at eight slice positions.

Every sweep renders each phantom on one grid, whose slices fall where they happen to against its
endplates. On 2 mm slices a dish shallower than the gap between the point and the next slice
that could show it leaves no trace there, and what a body reads depends on that gap. This
benchmark moves the grid of each body an eighth of a slice at a time along the slice axis (the
phantom's ``grid_offset_voxels``) on 2 mm slices, sampled at the voxel centres and averaged over
each voxel, and reports each position's VBV error (%) against the analytic truth, whether it
misses a target (the sweep's targets), and whether the result names unseen dishes
(``unseen_dishes``, with its bound), unseen endplates under a faint cortex or a shell that
closed nowhere.

The bodies: phantom 11 of the seed-2027 sweep (a biconcave T6 at 90% height with a faint 300 HU
cortex, whose true PSBCV/VBV% lies 0.14 points above the cut-off), the same with a normal
cortex, the same with flat endplates, and the biconcave grid's T12 at 90% height and L3 at 85%
height (seed 7).

Run: ``python benchmarks/benchmark_slice_phase.py [--out FILE]``; writes
``results/slice_phase.md`` by default. This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from benchmark_phantom_sweep import evaluate, measured_on, missed_targets, sweep_specs, within_targets

from CementLeakageLib.phantom import SUBVOXEL_OFFSET, PhantomSpec

POSITIONS = 8
"""Slice positions, an eighth of a slice apart."""
SLICINGS = (("sampled at voxel centres", False), ("averaged over each voxel", True))


def bodies() -> list[tuple[str, PhantomSpec]]:
    """The bodies measured, each with its name (on 2 mm slices, sampled at voxel centres)."""
    faint = sweep_specs(11, 2027)[10]
    normal = replace(faint, cortex_hu=PhantomSpec().cortex_hu)
    grid = {"spacing_mm": (0.7, 0.7, 2.0), "compression": "biconcave", "seed": 7}
    return [
        ("seed 2027 #11: T6, biconcave 90%, cortex 300 HU", faint),
        ("the same, normal cortex", normal),
        ("the same, flat endplates", replace(normal, compression="none", compression_ratio=1.0)),
        ("T12, biconcave 90% (grid)", PhantomSpec.for_level("T12", compression_ratio=0.9, **grid)),
        ("L3, biconcave 85% (grid)", PhantomSpec.for_level("L3", compression_ratio=0.85, **grid)),
    ]


def positioned(spec: PhantomSpec, position: int, averaged: bool) -> PhantomSpec:
    """``spec`` with its grid moved ``position`` eighths of a slice along the slice axis."""
    i, j, k = SUBVOXEL_OFFSET
    return replace(spec, grid_offset_voxels=(i, j, k + position / POSITIONS), slice_averaged=averaged)


def named(row: dict) -> str:
    """What the result says about endplates it may have left out: the unseen dishes' bound (%),
    a faint cortex's endplates between the slices (``faint``), a shell that closed nowhere, its
    faces flat on the points (``open``), or nothing."""
    warnings = row["warnings"]
    if any("leaves no trace" in warning for warning in warnings):
        return f"{row['unseen_dish_vbv_pct']:.0f}%"
    if any("may lie between two slices" in warning for warning in warnings):
        return "faint"
    if any("did not close around it" in warning for warning in warnings):
        return "open"
    return ""


def cell(row: dict) -> str:
    """One position: VBV error, * when it misses a target, and what the result names."""
    text = f"{row['vbv_pct']:+.1f}{'' if within_targets(row) else ' *'}"
    return f"{text} ({named(row)})" if named(row) else text


def report(rows: dict[tuple[str, str], list[dict]]) -> str:
    every = [row for cells in rows.values() for row in cells]
    missed = [row for row in every if not within_targets(row)]
    low = [row for row in every if row["vbv_pct"] < -4.0]
    counts = {}
    for row in missed:
        for target in missed_targets(row):
            counts[target] = counts.get(target, 0) + 1
    names = {
        "vbv_pct": "VBV",
        "bcv_pct": "BCV",
        "psbcv_pct": "PSBCV",
        "ratio_pt": "PSBCV/VBV%",
        "flag near the cut-off": "the flag (the ratio marked near the cut-off)",
        "flag": "the flag",
        "dice": "body Dice",
        "leaks": "a leak",
    }
    lines = [
        "# Slice positions on 2 mm slices",
        "",
        f"Measured {measured_on()}. Each body on 0.7 x 0.7 x 2 mm voxels, its grid moved an eighth of a "
        "slice at a time along the slice axis (position 0 is the sweeps' own). VBV error (%) against the "
        "analytic truth; * marks a position that misses any target (VBV, BCV, PSBCV within 4%, "
        "PSBCV/VBV% within 0.7 points, the flag right, body Dice at least 0.95, every leak found "
        "within 10%, nothing else reported as leakage); in brackets what the result names: the bound "
        "of unseen dishes (`unseen_dish_vbv_pct`), a faint cortex's endplates between the slices "
        "(`faint`) or a shell that closed nowhere, its faces flat on the points (`open`).",
        "",
        f"{len(every) - len(missed)} of {len(every)} meet every target. Missed: "
        + ", ".join(f"{names[key]} at {count}" for key, count in counts.items())
        + f". {len(low)} positions read VBV more than 4% low, {sum(bool(named(row)) for row in low)} of "
        f"them named; {sum(row['vbv_pct'] > 4.0 for row in every)} read it more than 4% high.",
        "",
        "| body | slices | " + " | ".join(str(p) for p in range(POSITIONS)) + " |",
        "| --- | --- | " + " | ".join("---" for _ in range(POSITIONS)) + " |",
    ]
    for (body, slicing), cells in rows.items():
        lines.append(f"| {body} | {slicing} | " + " | ".join(cell(row) for row in cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_out = Path(__file__).with_name("results") / "slice_phase.md"
    parser.add_argument("--out", type=Path, default=default_out)
    arguments = parser.parse_args()
    rows: dict[tuple[str, str], list[dict]] = {}
    for body, spec in bodies():
        for slicing, averaged in SLICINGS:
            cells = [evaluate(positioned(spec, p, averaged)) for p in range(POSITIONS)]
            rows[(body, slicing)] = cells
            print(f"{body}, {slicing}: " + " ".join(cell(row) for row in cells), flush=True)
    text = report(rows)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
