"""Biconcave bodies of moderate compression on thick slices, on a regular grid.

The random sweeps (:mod:`benchmark_phantom_sweep`) draw compression, level and slices
independently, so few of their phantoms combine a dish about as deep as a CT slice is thick
with a small body. This benchmark measures every combination of four levels (T6, T8, T12, L3)
and five heights of a biconcave body (75-95% of normal at the centre) on 0.7 x 0.7 mm pixels
with 2 mm slices, the bone sampled at the voxel centres and averaged over each voxel, and with
1 mm slices for comparison; everything else is the clean default phantom (seed 7). It reports
each phantom's VBV error (%) against the analytic truth, marks those that miss a target (the
sweep's targets: VBV, BCV, PSBCV within 4%, PSBCV/VBV% within 0.7 points, the flag right, body
Dice at least 0.95, every leak found within 10%, nothing else reported as leakage) and counts
them per slicing.

Run: ``python benchmarks/benchmark_biconcave_grid.py [--out FILE]``; writes
``results/biconcave_grid.md`` by default. This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from benchmark_phantom_sweep import evaluate, measured_on, within_targets

from CementLeakageLib.phantom import PhantomSpec

LEVELS = ("T6", "T8", "T12", "L3")
HEIGHT_RATIOS = (0.75, 0.8, 0.85, 0.9, 0.95)
"""Height at the centre of the biconcave body as a fraction of its rim's height."""
SLICINGS = (
    ("2 mm slices, sampled at voxel centres", 2.0, False),
    ("2 mm slices, averaged over each voxel", 2.0, True),
    ("1 mm slices, sampled at voxel centres", 1.0, False),
)
PIXEL_MM = 0.7
SEED = 7


def grid_specs() -> list[tuple[str, PhantomSpec]]:
    """The grid's phantoms, each with the name of its slicing."""
    return [
        (
            name,
            PhantomSpec.for_level(
                level=level,
                spacing_mm=(PIXEL_MM, PIXEL_MM, slice_mm),
                compression="biconcave",
                compression_ratio=ratio,
                slice_averaged=averaged,
                seed=SEED,
            ),
        )
        for name, slice_mm, averaged in SLICINGS
        for level in LEVELS
        for ratio in HEIGHT_RATIOS
    ]


def _cell(row: dict) -> str:
    """A phantom's VBV error, marked with * when it misses any target."""
    return f"{row['vbv_pct']:+.1f}{'' if within_targets(row) else ' *'}"


def report(results: list[tuple[str, PhantomSpec, dict]]) -> str:
    lines = [
        "# Biconcave bodies on thick slices",
        "",
        f"Measured {measured_on()}. The clean default phantom (seed "
        f"{SEED}) of each level, biconcave to each height at the centre, on {PIXEL_MM} x {PIXEL_MM} mm "
        "pixels. VBV error (%) against the analytic truth; * marks a phantom that misses any target",
        "(VBV, BCV, PSBCV within 4%, PSBCV/VBV% within 0.7 points, the flag right, body Dice at least",
        "0.95, every leak found within 10%, nothing else reported as leakage).",
        "",
    ]
    for name, _, _ in SLICINGS:
        rows = {(s.level, s.compression_ratio): row for slicing, s, row in results if slicing == name}
        errors = [row["vbv_pct"] for row in rows.values()]
        met = sum(within_targets(row) for row in rows.values())
        lines += [
            f"## {name}",
            "",
            f"{met} of {len(rows)} meet every target; VBV error median {statistics.median(errors):+.1f}%, "
            f"from {min(errors):+.1f}% to {max(errors):+.1f}%; body Dice from "
            f"{min(row['dice'] for row in rows.values()):.3f}.",
            "",
            "| level | " + " | ".join(f"{ratio:.0%} height" for ratio in HEIGHT_RATIOS) + " |",
            "| --- | " + " | ".join("---" for _ in HEIGHT_RATIOS) + " |",
        ]
        for level in LEVELS:
            cells = " | ".join(_cell(rows[(level, ratio)]) for ratio in HEIGHT_RATIOS)
            lines.append(f"| {level} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_out = Path(__file__).with_name("results") / "biconcave_grid.md"
    parser.add_argument("--out", type=Path, default=default_out)
    arguments = parser.parse_args()
    specs = grid_specs()
    results = []
    for n, (slicing, spec) in enumerate(specs, start=1):
        results.append((slicing, spec, evaluate(spec)))
        print(f"{n}/{len(specs)} {slicing}: {results[-1][2]['spec']}", flush=True)
    text = report(results)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
