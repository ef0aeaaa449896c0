"""Speed and memory of measuring one vertebra on a 512 x 512 x 400 CT.

Builds the default synthetic phantom, embeds it in a 512 x 512 x 400 CT (0.7 x 0.7 x 1.0 mm),
and times, over repeated runs:

* ``measure_masks`` on given body and cement masks (target: under 0.5 s);
* ``measure_vertebra`` with automatic segmentation, on the CT in memory (target: under 2 s;
  it works on a region around the vertebra, not the whole volume);
* ``measure_vertebra`` with the points ``APART_MM`` in front of and behind their endplates'
  middles (the upper one anterior), whose line leans against the body's axis: the body is
  segmented again along the axis read (one to three more segmentations);
* the same with the points each of ``SIDEWAYS_MM`` to the right and left of their middles (the
  line leans 13 and 29 degrees): the cross-sections read half of the lean or the wrong way, and
  the tilt of the enclosed faces gives the axis followed;
* the ``cementleakage measure`` command end to end on an uncompressed NRRD file (reading
  the file included), with its peak memory (maximum resident set size; target: under 2 GB).

Run: ``python benchmarks/benchmark_measure.py [--repeats 5]``. Prints medians and the machine.
This is a benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from CementLeakageLib.ct_volume import CtVolume
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.image_io import write_volume
from CementLeakageLib.measurement import measure_masks
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra
from CementLeakageLib.vertebra_frame import vertebra_frame

SHAPE = (400, 512, 512)
SPACING = (0.7, 0.7, 1.0)
APART_MM = 3.0
"""How far (mm) each point is moved off its endplate's middle, front to back, for the leaning
line's timing."""
SIDEWAYS_MM = (3.0, 7.0)
"""How far (mm) each point is moved off its endplate's middle, side to side, for the timings of a
line leaning against the body: the cross-sections read part of the lean, or the wrong way."""


def embedded_phantom() -> tuple[CtVolume, object]:
    """The default phantom placed in the middle of a 512 x 512 x 400 CT of soft tissue and air."""
    phantom = make_phantom(PhantomSpec(spacing_mm=SPACING, orientation="axial"))
    small = phantom.ct
    large = np.full(SHAPE, 40, dtype=np.int16)
    yy, xx = np.mgrid[: SHAPE[1], : SHAPE[2]]
    outside_patient = (yy - SHAPE[1] / 2) ** 2 / (0.45 * SHAPE[1]) ** 2 + (xx - SHAPE[2] / 2) ** 2 / (
        0.48 * SHAPE[2]
    ) ** 2 > 1
    large[:, outside_patient] = -1000
    offset = [(big - little) // 2 for big, little in zip(SHAPE, small.array_hu.shape)]
    region = tuple(slice(o, o + n) for o, n in zip(offset, small.array_hu.shape))
    large[region] = small.array_hu
    matrix = small.geometry.ijk_to_ras.copy()
    matrix[:3, 3] = small.geometry.ijk_to_ras_points([[-offset[2], -offset[1], -offset[0]]])[0]
    geometry = VolumeGeometry(matrix, SHAPE)
    return CtVolume(large, geometry, source="benchmark phantom"), (phantom, region)


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()

    ct, (phantom, region) = embedded_phantom()
    truth = phantom.truth
    body = np.zeros(SHAPE, dtype=bool)
    cement = np.zeros(SHAPE, dtype=bool)
    body[region] = phantom.body_mask
    cement[region] = phantom.cement_in_body_mask | phantom.extravertebral_cement_mask

    given = median_seconds(
        lambda: measure_masks(body, cement, ct.geometry, truth.upper_ras, truth.lower_ras, truth.side),
        arguments.repeats,
    )
    automatic = median_seconds(
        lambda: measure_vertebra(ct, truth.upper_ras, truth.lower_ras, truth.side, level=truth.level),
        arguments.repeats,
    )
    upper, lower = np.asarray(truth.upper_ras, float), np.asarray(truth.lower_ras, float)
    anterior = vertebra_frame(upper, lower).anterior_ras
    apart = (upper + APART_MM * anterior, lower - APART_MM * anterior)
    leaning = median_seconds(
        lambda: measure_vertebra(ct, *apart, truth.side, level=truth.level), arguments.repeats
    )
    lateral = vertebra_frame(upper, lower).lateral_ras
    sideways = {}
    for apart_mm in SIDEWAYS_MM:
        points = (upper + apart_mm * lateral, lower - apart_mm * lateral)
        sideways[apart_mm] = median_seconds(
            lambda points=points: measure_vertebra(ct, *points, truth.side, level=truth.level),
            arguments.repeats,
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ct.nrrd"
        write_volume(ct.array_hu, ct.geometry, path, compress=False)
        command = [
            sys.executable,
            "-m",
            "CementLeakageLib.cli",
            "measure",
            str(path),
            "--upper=" + ",".join(f"{v:.3f}" for v in truth.upper_ras),
            "--lower=" + ",".join(f"{v:.3f}" for v in truth.lower_ras),
            "--side",
            truth.side,
            "--json",
        ]
        end_to_end = median_seconds(lambda: subprocess.run(command, check=True, capture_output=True), 3)
        # The largest resident set of any finished child process (kB on Linux).
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0

    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.node()} {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"CT: {SHAPE[2]} x {SHAPE[1]} x {SHAPE[0]} voxels, {SPACING} mm; medians of {arguments.repeats} runs"
    )
    print(f"measure_masks (given masks):              {given:7.3f} s")
    print(f"measure_vertebra (automatic segmentation): {automatic:7.3f} s")
    print(f"the same, points {APART_MM:g} mm apart front to back: {leaning:7.3f} s")
    for apart_mm, seconds in sideways.items():
        print(f"the same, points {apart_mm:g} mm apart side to side:  {seconds:7.3f} s")
    print(f"cementleakage measure (file, end to end):  {end_to_end:7.3f} s, peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
