"""The ``cementleakage`` command line.

``cementleakage measure CT --upper R,A,S --lower R,A,S --side left|right ...`` measures one
vertebra; ``cementleakage demo`` writes a synthetic postoperative CT, measures it and prints
the result next to the phantom's true values. Errors print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .errors import CementLeakageError
from .parameters import MeasurementParameters

EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 3
POINT_OPTIONS = ("--upper", "--lower")
_NUMBER_LIST = re.compile(r"^-?\d")


def parse_point(text: str) -> np.ndarray:
    """Parse ``R,A,S`` (mm) into an RAS point."""
    parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 3 or not all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected three numbers R,A,S in mm, got {text!r}")
    return np.array(values)


def _join_negative_points(argv: list[str]) -> list[str]:
    """Let ``--upper -12,3,40`` through argparse by turning it into ``--upper=-12,3,40``."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in POINT_OPTIONS and index + 1 < len(argv) and _NUMBER_LIST.match(argv[index + 1]):
            joined.append(f"{token}={argv[index + 1]}")
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for bad input
        raise CementLeakageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cementleakage`` command."""
    parser = _Parser(prog="cementleakage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"cementleakage {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    measure = commands.add_parser("measure", help="measure one vertebra of a CT")
    measure.add_argument("ct", help="CT file (.nrrd, .nii, .nii.gz, .mha) or DICOM series folder")
    measure.add_argument(
        "--upper", type=parse_point, required=True, help="upper endplate midpoint R,A,S (mm)"
    )
    measure.add_argument(
        "--lower", type=parse_point, required=True, help="lower endplate midpoint R,A,S (mm)"
    )
    measure.add_argument("--side", required=True, choices=("left", "right"), help="puncture side (patient)")
    measure.add_argument("--level", default="", help="vertebral level, e.g. L1 (names the output files)")
    measure.add_argument("--segmentation", help="measure this .seg.nrrd as it is instead of segmenting")
    measure.add_argument(
        "--body-segment", default="Vertebral body", help="body segment name in --segmentation"
    )
    measure.add_argument("--cement-segment", default="Cement", help="cement segment name in --segmentation")
    measure.add_argument("--series-uid", help="DICOM series to read when the folder holds several")
    _add_common_options(measure)

    demo = commands.add_parser("demo", help="measure a built-in synthetic postoperative CT")
    demo.add_argument(
        "--side", default="left", choices=("left", "right"), help="puncture side of the phantom"
    )
    _add_common_options(demo)
    return parser


def _add_common_options(command: argparse.ArgumentParser) -> None:
    defaults = MeasurementParameters()
    command.add_argument("--cutoff", type=float, default=defaults.cutoff_pct, help="PSBCV/VBV%% cut-off")
    command.add_argument(
        "--cement-min", type=float, default=defaults.cement_min_hu, help="cement threshold (HU)"
    )
    command.add_argument(
        "--cement-max", type=float, default=defaults.cement_max_hu, help="cement upper bound (HU)"
    )
    command.add_argument("--bone-min", type=float, default=defaults.bone_min_hu, help="bone threshold (HU)")
    command.add_argument("--bone-max", type=float, default=defaults.bone_max_hu, help="bone upper bound (HU)")
    command.add_argument(
        "--out", type=Path, help="folder for <level>.seg.nrrd, <level>.mrk.json, <level>.json"
    )
    command.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    command.add_argument("--force", action="store_true", help="replace results already in --out")


def parameters_from(arguments: argparse.Namespace) -> MeasurementParameters:
    """Measurement parameters from the parsed options."""
    return MeasurementParameters(
        cement_min_hu=arguments.cement_min,
        cement_max_hu=arguments.cement_max,
        bone_min_hu=arguments.bone_min,
        bone_max_hu=arguments.bone_max,
        cutoff_pct=arguments.cutoff,
    )


def file_stem(level: str) -> str:
    """A safe file name stem for a level label (``vertebra`` when empty)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", level.strip()).strip("._")
    return stem or "vertebra"


def run_measure(arguments: argparse.Namespace) -> tuple[dict, object]:
    """Measure as the ``measure`` command does; returns the JSON record and the result."""
    from .image_io import read_ct
    from .pipeline import measure_vertebra

    parameters = parameters_from(arguments)
    ct = read_ct(arguments.ct, series_uid=arguments.series_uid)
    body_mask = cement_mask = None
    if arguments.segmentation:
        from .segmentation_files import read_segment_masks

        names = [arguments.body_segment, arguments.cement_segment]
        masks = read_segment_masks(arguments.segmentation, names, ct.geometry)
        body_mask, cement_mask = masks[arguments.body_segment], masks[arguments.cement_segment]
    result = measure_vertebra(
        ct,
        arguments.upper,
        arguments.lower,
        arguments.side,
        level=arguments.level,
        parameters=parameters,
        body_mask=body_mask,
        cement_mask=cement_mask,
    )
    return result.measurement.as_dict(), result


def output_paths(out: Path, level: str) -> list[Path]:
    """``<level>.seg.nrrd``, ``<level>.mrk.json`` and ``<level>.json`` in ``out``."""
    stem = file_stem(level)
    return [out / f"{stem}.seg.nrrd", out / f"{stem}.mrk.json", out / f"{stem}.json"]


def check_outputs_free(out: Path, level: str, force: bool) -> None:
    """Refuse to replace earlier results unless ``force`` is set."""
    if out.exists() and not out.is_dir():
        raise CementLeakageError(f"--out {out} is a file, not a folder: give a folder for the results")
    existing = [path.name for path in output_paths(out, level) if path.exists()]
    if existing and not force:
        raise CementLeakageError(
            f"{out} already holds {', '.join(existing)}: "
            "choose another --out folder or pass --force to replace them"
        )


def write_outputs(out: Path, record: dict, result: object) -> list[Path]:
    """Write ``<level>.seg.nrrd``, ``<level>.mrk.json`` and ``<level>.json`` into ``out``.

    All three are written into a temporary folder beside them first and then renamed into
    place, so a failure half-way leaves none of them behind.
    """
    from .markups_files import write_endplate_markups_file
    from .segmentation_files import write_segmentation_file

    out.mkdir(parents=True, exist_ok=True)
    metadata = {
        "level": record["level"],
        "side": record["side"],
        "input_sha256": record["input_sha256"],
        "input_source": record["input_source"],
        "software_version": record["software_version"],
    }
    final_paths = output_paths(out, record["level"])
    with tempfile.TemporaryDirectory(dir=out, prefix=".cementleakage-") as scratch:
        staged = [Path(scratch) / path.name for path in final_paths]
        write_segmentation_file(staged[0], result.masks_by_segment_name(), result.geometry, metadata=metadata)
        write_endplate_markups_file(staged[1], record["upper_ras"], record["lower_ras"], record["level"])
        staged[2].write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        for source, target in zip(staged, final_paths):
            os.replace(source, target)
    return final_paths


def format_measurement(record: dict) -> str:
    """A short human-readable summary of one measurement."""
    flag = "ABOVE" if record["exceeds_cutoff"] else "below"
    lines = [
        f"Level {record['level'] or '(unnamed)'}, puncture side {record['side']}",
        f"  VBV    {record['vbv_cm3']:8.3f} cm3",
        f"  BCV    {record['bcv_cm3']:8.3f} cm3   BCV/VBV   {record['bcv_vbv_pct']:6.2f} %",
        f"  PSBCV  {record['psbcv_cm3']:8.3f} cm3   PSBCV/VBV {record['psbcv_vbv_pct']:6.2f} %",
        f"  Extravertebral cement {record['extravertebral_cement_cm3']:.3f} cm3",
        f"  PSBCV/VBV% is {flag} the {record['cutoff_pct']:g}% cut-off. {record['interpretation']}",
    ]
    lines.extend(f"  warning: {warning}" for warning in record["warnings"])
    return "\n".join(lines)


def run_demo(arguments: argparse.Namespace) -> int:
    """Write a synthetic postoperative CT, measure it with ``measure`` and compare with its truth."""
    from .image_io import write_volume
    from .phantom import PhantomSpec, make_phantom

    phantom = make_phantom(PhantomSpec(side=arguments.side))
    truth = phantom.truth
    if arguments.out:
        check_outputs_free(arguments.out, truth.level, arguments.force)
    with tempfile.TemporaryDirectory() as scratch:
        folder = arguments.out or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        ct_path = folder / f"demo_{file_stem(truth.level)}_ct.nrrd"
        write_volume(phantom.ct.array_hu, phantom.ct.geometry, ct_path)
        arguments.ct = str(ct_path)
        arguments.upper, arguments.lower = truth.upper_ras, truth.lower_ras
        arguments.level, arguments.series_uid, arguments.segmentation = truth.level, None, None
        record, result = run_measure(arguments)
        if arguments.out:
            write_outputs(arguments.out, record, result)
    record["phantom_truth"] = {
        "vbv_cm3": truth.vbv_cm3,
        "bcv_cm3": truth.bcv_cm3,
        "psbcv_cm3": truth.psbcv_cm3,
        "bcv_vbv_pct": truth.bcv_vbv_pct,
        "psbcv_vbv_pct": truth.psbcv_vbv_pct,
        "exceeds_cutoff": truth.exceeds_cutoff,
        "extravertebral_cement_cm3": truth.extravertebral_cement_cm3,
    }
    if arguments.json:
        print(json.dumps(record))
        return 0
    print(f"Synthetic postoperative CT: {ct_path.name if arguments.out else 'in a temporary folder'}")
    print(f"{'quantity':<28}{'measured':>12}{'true':>12}{'error':>10}")
    for key, unit in (
        ("vbv_cm3", "cm3"),
        ("bcv_cm3", "cm3"),
        ("psbcv_cm3", "cm3"),
        ("bcv_vbv_pct", "%"),
        ("psbcv_vbv_pct", "%"),
        ("extravertebral_cement_cm3", "cm3"),
    ):
        measured, true = record[key], record["phantom_truth"][key]
        error = (
            f"{100 * (measured - true) / true:+.1f}%" if unit == "cm3" and true else f"{measured - true:+.2f}"
        )
        print(f"{key:<28}{measured:>12.3f}{true:>12.3f}{error:>10}")
    print(f"{'exceeds_cutoff':<28}{record['exceeds_cutoff']!s:>12}{truth.exceeds_cutoff!s:>12}")
    print(record["interpretation"])
    for warning in record["warnings"]:
        print(f"warning: {warning}")
    if arguments.out:
        print(f"Wrote the CT and the results to {arguments.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cementleakage`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        arguments = build_parser().parse_args(_join_negative_points(argv))
        if arguments.command == "demo":
            return run_demo(arguments)
        if arguments.out:
            check_outputs_free(arguments.out, arguments.level, arguments.force)
        record, result = run_measure(arguments)
        if arguments.out:
            write_outputs(arguments.out, record, result)
        print(json.dumps(record) if arguments.json else format_measurement(record))
        return 0
    except CementLeakageError as error:
        print(f"cementleakage: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("cementleakage: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place that turns surprises into one line
        print(f"cementleakage: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
