"""Cement planted into a real vertebra: the measurement on a real shape against an analytic truth.

The phantoms have smooth walls, a shell of one intensity and posterior elements of one density.
The real L2 of the tests (``Testing/Data/verse004-L2``, expert labels; read as a CT as
``Testing/Python/real_vertebra.py`` states) has none of that: a waisted body with dished
endplates, a faint shell and cortex of the posterior arch as dense as it comes. A bolus
(an ellipsoid of 1.407 cm³) is planted in its labelled body, 0, 3 or 5 mm off the centroid
towards the puncture side, with four leaks around it (paravertebral on the puncture side, in
the spinal canal, in front of the body, in the disc above;
:mod:`CementLeakageLib.planted_cement`), on the image read with three density-to-HU slopes
(1.0, 1.15 and 1.3 HU per mg HA/cm³: the shell's median is then 150, 172 and 195 HU).

Each row compares:

- VBV with the bolus against the same CT without it (leaks only), and against the labels;
- BCV and PSBCV against the bolus's analytic volume and its analytic part on the puncture side
  of the split plane (:mod:`CementLeakageLib.planted_cement` keeps the cement a voxel gains);
- PSBCV/VBV% against the analytic PSBCV over the VBV measured without the bolus (the ratio's
  change from the cement's effect on the body alone);
- each planted leak: found at its location, its volume error; and every component reported as
  leakage that lies more than 5 mm from each planted leak (a false leak).

Run: ``python benchmarks/benchmark_real_vertebra_cement.py [--out FILE]``; writes
``results/real_vertebra_cement.md`` by default. This is a benchmark, not a test: nothing here
asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from benchmark_phantom_sweep import measured_on

from CementLeakageLib.pipeline import measure_vertebra

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing" / "Python"))
from real_vertebra import BODY_LABELS, real_vertebra_with_cement  # noqa: E402

SLOPES = (1.0, 1.15, 1.3)
OFFSETS_MM = (0.0, 3.0, 5.0)
SIDES = ("left", "right")
LEAKS = ("paravertebral", "spinal canal", "anterior", "disc superior")
MATCH_MM = 5.0
"""A reported component whose centroid lies within this distance (mm) of a planted leak's centre
is that leak's."""


def _without_bolus(slope: float, side: str) -> float:
    """VBV (cm³) of the CT with the leaks and no bolus."""
    no_bolus = real_vertebra_with_cement(side, 0.0, LEAKS, slope, bolus=False)
    result = measure_vertebra(no_bolus.ct, no_bolus.upper_ras, no_bolus.lower_ras, side, level="L2")
    return result.measurement.vbv_cm3


def evaluate(slope: float, offset_mm: float, side: str, vbv_without: float) -> dict:
    """One row: the planted CT measured against its truth."""
    case = real_vertebra_with_cement(side, offset_mm, LEAKS, slope)
    result = measure_vertebra(case.ct, case.upper_ras, case.lower_ras, side, level="L2")
    m = result.measurement
    labels = np.isin(case.labels, BODY_LABELS)
    mask = result.body_mask
    dice = 2.0 * np.count_nonzero(mask & labels) / (np.count_nonzero(mask) + np.count_nonzero(labels))
    leaks, claimed = [], set()
    for location, solid in case.leaks.items():
        near = [
            (float(np.linalg.norm(np.asarray(c["centroid_ras"]) - solid.centre_ras)), n)
            for n, c in enumerate(m.extravertebral_components)
        ]
        near = [(d, n) for d, n in near if d <= MATCH_MM]
        if not near:
            leaks.append((location, None, None))
            continue
        _, n = min(near)
        claimed.add(n)
        component = m.extravertebral_components[n]
        error = 100.0 * (component["volume_cm3"] / (solid.volume_mm3 / 1000.0) - 1.0)
        leaks.append((location, component["location"], error))
    false = [
        f"{c['location']} {c['volume_cm3']:.3f} cm³"
        + (" (noted in bone)" if "lies in bone" in c["note"] else "")
        for n, c in enumerate(m.extravertebral_components)
        if c["is_leakage"] and n not in claimed
    ]
    noted_leaks = sum(
        1 for n, c in enumerate(m.extravertebral_components) if n in claimed and "lies in bone" in c["note"]
    )
    return {
        "slope": slope,
        "offset_mm": offset_mm,
        "side": side,
        "vbv_cm3": m.vbv_cm3,
        "vbv_vs_without_pct": 100.0 * (m.vbv_cm3 / vbv_without - 1.0),
        "vbv_vs_labels_pct": 100.0 * (m.vbv_cm3 / (np.count_nonzero(labels) / 1000.0) - 1.0),
        "dice": dice,
        "bcv_pct": 100.0 * (m.bcv_cm3 / case.bcv_cm3 - 1.0),
        "psbcv_pct": 100.0 * (m.psbcv_cm3 / case.psbcv_cm3 - 1.0),
        "ratio_pt": m.psbcv_vbv_pct - 100.0 * case.psbcv_cm3 / vbv_without,
        "leaks": leaks,
        "false_leaks": false,
        "planted_noted_in_bone": noted_leaks,
        "warnings": len(result.measurement.warnings),
    }


def _leak_cell(leaks: list) -> str:
    cells = []
    for location, found, error in leaks:
        if found is None:
            cells.append(f"{location} missed")
        elif found != location:
            cells.append(f"{location} as {found} {error:+.1f}")
        else:
            cells.append(f"{location} {error:+.1f}")
    return ", ".join(cells)


def report(rows: list[dict], without: dict) -> str:
    def spread(key: str) -> str:
        values = [abs(r[key]) for r in rows]
        return f"{statistics.median(values):.2f} (median), {max(values):.2f} (worst)"

    leak_errors = [abs(e) for r in rows for location, found, e in r["leaks"] if found == location]
    misplaced = sum(1 for r in rows for location, found, _ in r["leaks"] if found not in (None, location))
    missed = sum(1 for r in rows for _, found, _ in r["leaks"] if found is None)
    lines = [
        "# Cement planted into a real vertebra",
        "",
        f"Measured {measured_on()}. The real L2 of the tests with a planted bolus (1.407 cm³) and four",
        "leaks; errors in % against the analytic volumes but where said. VBV without the bolus",
        "(the same CT with the leaks only), by slope and side: "
        + ", ".join(f"{slope} {side} {vbv:.3f} cm³" for (slope, side), vbv in without.items())
        + "; the labelled body is 33.646 cm³.",
        "",
        "| quantity | absolute error |",
        "| --- | --- |",
        f"| VBV against the same CT without the bolus (%) | {spread('vbv_vs_without_pct')} |",
        f"| BCV (%) | {spread('bcv_pct')} |",
        f"| PSBCV (%) | {spread('psbcv_pct')} |",
        f"| PSBCV/VBV% (points, against the VBV without the bolus) | {spread('ratio_pt')} |",
        f"| leaks found at their location: volume (%) | {statistics.median(leak_errors):.1f} (median), "
        f"{max(leak_errors):.1f} (worst); {misplaced} at another location, {missed} missed |",
        f"| components reported as leakage where none was planted | "
        f"{sum(len(r['false_leaks']) for r in rows)} in {sum(1 for r in rows if r['false_leaks'])} of "
        f"{len(rows)} rows, {sum(f.endswith('(noted in bone)') for r in rows for f in r['false_leaks'])} "
        "of them noted as lying in bone |",
        f"| planted leaks noted as lying in bone | {sum(r['planted_noted_in_bone'] for r in rows)} |",
        "",
        "| HU per mg/cm³ | bolus off centre (mm) | side | VBV (cm³) | VBV vs without bolus | VBV vs labels "
        "| Dice | BCV | PSBCV | PSBCV/VBV% (points) | leaks | false leaks | warnings |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['slope']} | {r['offset_mm']:.0f} | {r['side']} | {r['vbv_cm3']:.2f} | "
            f"{r['vbv_vs_without_pct']:+.1f} | {r['vbv_vs_labels_pct']:+.1f} | {r['dice']:.3f} | "
            f"{r['bcv_pct']:+.1f} | {r['psbcv_pct']:+.1f} | {r['ratio_pt']:+.2f} | "
            f"{_leak_cell(r['leaks'])} | "
            f"{'; '.join(r['false_leaks']) or 'none'} | {r['warnings']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent / "results" / "real_vertebra_cement.md"
    parser.add_argument("--out", type=Path, default=default)
    arguments = parser.parse_args()
    rows, without = [], {}
    for slope in SLOPES:
        for side in SIDES:
            without[(slope, side)] = _without_bolus(slope, side)
            for offset in OFFSETS_MM:
                row = evaluate(slope, offset, side, without[(slope, side)])
                rows.append(row)
                print(
                    f"{slope} {side} {offset:.0f} mm: VBV {row['vbv_vs_without_pct']:+.1f}% "
                    f"BCV {row['bcv_pct']:+.1f}% PSBCV {row['psbcv_pct']:+.1f}% "
                    f"{_leak_cell(row['leaks'])}; false: {row['false_leaks']}",
                    flush=True,
                )
    arguments.out.write_text(report(rows, without), encoding="utf-8")
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
