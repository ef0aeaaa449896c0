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
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .case_export import check_bundle_destination, level_file_stem
from .ct_volume import positive_mm
from .errors import CementLeakageError
from .parameters import MeasurementParameters

EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 3
EXIT_MISMATCH = 1
"""Exit status of verify when a number measured again differs from the stored one."""
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


def parse_slice_thickness(text: str) -> float:
    """Parse a slice thickness (mm): a positive number."""
    value = positive_mm(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a slice thickness in mm above 0, got {text!r}")
    return value


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
        "--upper",
        type=parse_point,
        action="append",
        help="upper endplate midpoint R,A,S (mm); once per level",
    )
    measure.add_argument(
        "--lower",
        type=parse_point,
        action="append",
        help="lower endplate midpoint R,A,S (mm); once per level",
    )
    measure.add_argument(
        "--side", action="append", choices=("left", "right"), help="puncture side (patient); once per level"
    )
    measure.add_argument(
        "--level", action="append", help="vertebral level, e.g. L1 (names the output files); once per level"
    )
    measure.add_argument(
        "--levels",
        type=Path,
        help="JSON or CSV file of levels (level, upper, lower, side) instead of the options",
    )
    measure.add_argument("--segmentation", help="measure this .seg.nrrd as it is instead of segmenting")
    measure.add_argument(
        "--body-segment", default="Vertebral body", help="body segment name in --segmentation"
    )
    measure.add_argument("--cement-segment", default="Cement", help="cement segment name in --segmentation")
    measure.add_argument("--series-uid", help="DICOM series to read when the folder holds several")
    measure.add_argument(
        "--slice-thickness",
        type=parse_slice_thickness,
        help="reconstructed slice thickness (mm) when it differs from the slice spacing and the file "
        "does not state it (DICOM SliceThickness does; NRRD and NIfTI do not)",
    )
    _add_common_options(measure)

    plan = commands.add_parser(
        "plan", help="cement budget before surgery: VBV and the largest cement volume under each rule"
    )
    plan.add_argument("ct", help="preoperative CT file or DICOM series folder")
    plan.add_argument("--upper", type=parse_point, required=True, help="upper endplate midpoint R,A,S (mm)")
    plan.add_argument("--lower", type=parse_point, required=True, help="lower endplate midpoint R,A,S (mm)")
    plan.add_argument("--side", required=True, choices=("left", "right"), help="planned puncture side")
    plan.add_argument("--level", default="", help="vertebral level, e.g. L1")
    plan.add_argument("--series-uid", help="DICOM series to read when the folder holds several")
    plan.add_argument("--bone-min", type=float, default=MeasurementParameters().bone_min_hu, help="bone (HU)")
    plan.add_argument("--bone-max", type=float, default=MeasurementParameters().bone_max_hu, help="bone (HU)")
    plan.add_argument("--rule", action="append", help="risk rule to budget for (repeatable; default: all)")
    plan.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")

    cohort = commands.add_parser("cohort", help="statistics of a cohort CSV (one row per vertebra)")
    cohort.add_argument("csv", type=Path, help="CSV with the measure columns plus factors and the outcome")
    cohort.add_argument("--outcome", required=True, help="binary outcome column, e.g. leakage")
    cohort.add_argument("--factors", help="comma-separated factor columns (default: every numeric column)")
    cohort.add_argument("--categorical", help="comma-separated factors to treat as categories, e.g. sex")
    cohort.add_argument("--out", type=Path, help="folder for cohort.json, cohort.md and roc.png")
    cohort.add_argument("--force", action="store_true", help="replace files already in --out")
    cohort.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")

    verify = commands.add_parser(
        "verify", help="re-measure a results folder from its stored masks and points and compare"
    )
    verify.add_argument("folder", type=Path, help="folder written by measure --out or the panel's Export")
    verify.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")

    rules = commands.add_parser("rules", help="list the published risk rules and their evidence")
    rules.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")

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
        "--out",
        type=Path,
        help="new folder for the audit bundle: results.json, results.csv, <level>.seg.nrrd, <level>.mrk.json",
    )
    command.add_argument(
        "--anonymize",
        action="store_true",
        help="leave patient-identifying DICOM attributes out of the bundle (UIDs are kept)",
    )
    command.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    command.add_argument("--force", action="store_true", help="replace a bundle already in --out")
    command.add_argument(
        "--rule",
        action="append",
        help="evaluate this published risk rule too (repeatable; see 'cementleakage rules')",
    )


def parameters_from(arguments: argparse.Namespace) -> MeasurementParameters:
    """Measurement parameters from the parsed options."""
    return MeasurementParameters(
        cement_min_hu=arguments.cement_min,
        cement_max_hu=arguments.cement_max,
        bone_min_hu=arguments.bone_min,
        bone_max_hu=arguments.bone_max,
        cutoff_pct=arguments.cutoff,
    )


def level_requests(arguments: argparse.Namespace) -> list:
    """The levels to measure, from ``--levels FILE`` or from repeated ``--level/--upper/--lower/--side``.

    The n-th ``--upper``, ``--lower``, ``--side`` and ``--level`` belong together; one
    ``--side`` may serve every level, and a single level needs no ``--level``.
    """
    from .multi_level import LevelRequest, check_distinct_levels, read_level_requests

    uppers, lowers = arguments.upper or [], arguments.lower or []
    sides, levels = arguments.side or [], arguments.level or []
    if arguments.levels is not None:
        if uppers or lowers or sides or levels:
            raise CementLeakageError(
                "give the levels either with --levels FILE or with the options, not both"
            )
        return read_level_requests(arguments.levels)
    count = len(uppers)
    if count == 0 or len(lowers) != count:
        raise CementLeakageError(
            f"give one --upper and one --lower per level (got {len(uppers)} and {len(lowers)}), "
            "or a file of levels with --levels"
        )
    if len(sides) == 1:
        sides = sides * count
    if len(sides) != count:
        raise CementLeakageError(
            f"give one --side per level, or one for all (got {len(sides)} for {count} levels)"
        )
    if not levels and count == 1:
        levels = [""]
    if len(levels) != count:
        raise CementLeakageError(f"give one --level per level (got {len(levels)} for {count} levels)")
    requests = [LevelRequest(*fields) for fields in zip(levels, uppers, lowers, sides)]
    check_distinct_levels(requests)
    return requests


def given_masks_by_level(arguments: argparse.Namespace, requests: list, ct) -> dict:
    """Body and cement masks per level from ``--segmentation``: segments ``<level> <name>`` when
    the file has them, else the plain names (one level only)."""
    if not arguments.segmentation:
        return {}
    from .segmentation_files import read_segment_masks, read_segment_names

    present = set(read_segment_names(arguments.segmentation))
    given = {}
    for request in requests:
        names = [arguments.body_segment, arguments.cement_segment]
        prefixed = [f"{request.level} {name}" for name in names]
        if request.level and all(name in present for name in prefixed):
            names = prefixed
        elif len(requests) > 1:
            raise CementLeakageError(
                f"{Path(arguments.segmentation).name} has no segments {prefixed[0]!r} and {prefixed[1]!r}: "
                "name each level's segments '<level> <name>'"
            )
        masks = read_segment_masks(arguments.segmentation, names, ct.geometry)
        given[request.level] = (masks[names[0]], masks[names[1]], names)
    return given


def run_measure(arguments: argparse.Namespace, requests: list | None = None) -> tuple[list, object]:
    """Measure as the ``measure`` command does; returns ``[(record, result, given names)]`` and the CT."""
    from .image_io import read_ct
    from .multi_level import measure_levels

    requests = requests if requests is not None else level_requests(arguments)
    parameters = parameters_from(arguments)
    ct = read_ct(arguments.ct, series_uid=arguments.series_uid)
    if getattr(arguments, "slice_thickness", None) is not None:
        ct.slice_thickness_mm = arguments.slice_thickness
    given = given_masks_by_level(arguments, requests, ct)
    results = measure_levels(
        ct, requests, parameters, {level: (body, cement) for level, (body, cement, _) in given.items()}
    )
    measured = []
    for request, result in zip(requests, results):
        record = result.measurement.as_dict()
        record["risk_rules"] = evaluate_rules(record, getattr(arguments, "rule", None))
        names = given.get(request.level, (None, None, None))[2]
        measured.append((record, result, names))
    return measured, ct


def evaluate_rules(record: dict, names: list[str] | None) -> list[dict]:
    """The paper's rule, then every other rule asked for, evaluated on one measurement record."""
    from .risk_rules import default_rule_name, evaluate_rule, get_rule

    wanted = [default_rule_name()] + [name for name in (names or []) if name != default_rule_name()]
    return [evaluate_rule(get_rule(name), record) for name in dict.fromkeys(wanted)]


def run_plan(arguments: argparse.Namespace) -> int:
    """VBV of a vertebra on a preoperative CT and the cement budget under each rule."""
    from .cement_plan import plan_vertebra
    from .image_io import read_ct

    parameters = MeasurementParameters(bone_min_hu=arguments.bone_min, bone_max_hu=arguments.bone_max)
    ct = read_ct(arguments.ct, series_uid=arguments.series_uid)
    record = plan_vertebra(
        ct,
        arguments.upper,
        arguments.lower,
        arguments.side,
        level=arguments.level,
        parameters=parameters,
        rule_names=arguments.rule,
    )
    record.pop("body_mask")
    side, vbv_cm3, warnings = record["side"], record["vbv_cm3"], record["warnings"]
    if arguments.json:
        print(json.dumps(record))
        return 0
    print(f"Level {record['level'] or '(unnamed)'}, planned puncture side {side}: VBV {vbv_cm3:.2f} cm3")
    for budget in record["budgets"]:
        mark = "" if budget["verified"] else "  [unverified rule]"
        print(
            f"  {budget['rule']:<22} at most {budget['max_cement_ml']:5.2f} mL of {budget['applies_to']} "
            f"({budget['metric']} <= {budget['threshold']:g}{budget['unit'].replace('cm3', ' cm3')}){mark}"
        )
    for warning in warnings:
        print(f"  warning: {warning}")
    return 0


def run_rules(arguments: argparse.Namespace) -> int:
    """List the published rules with their figures and whether each was verified."""
    from .risk_rules import default_rule_name, load_rules

    rules = load_rules()
    if arguments.json:
        document = {
            "default_rule": default_rule_name(),
            "rules": [
                {
                    **{k: v for k, v in vars(rule).items() if k not in ("figures", "cohort")},
                    "figures": {k: vars(f) for k, f in rule.figures.items()},
                    "cohort": {k: vars(f) for k, f in rule.cohort.items()},
                }
                for rule in rules.values()
            ],
        }
        print(json.dumps(document))
        return 0
    for rule in rules.values():
        default = " (default)" if rule.name == default_rule_name() else ""
        print(f"{rule.name}{default}: {rule.metric} > {rule.threshold:g} {rule.unit} -> {rule.outcome}")
        for key, figure in rule.figures.items():
            status = "verified" if figure.verified else "UNVERIFIED"
            print(f"    {key:<20} {figure.value:g}  [{status}]")
        print(f"    {rule.citation}")
    return 0


def run_cohort(arguments: argparse.Namespace) -> int:
    """Univariate comparison, logistic regression and ROC of a cohort CSV."""
    try:
        from .cohort_statistics import (
            analyse_cohort,
            analysis_to_dict,
            format_tables_markdown,
            read_cohort_csv,
            write_roc_plot,
        )
    except ImportError as error:
        raise CementLeakageError(
            f"the cohort command needs scipy, statsmodels, scikit-learn and matplotlib ({error}): "
            "install them with pip install 'cementleakage[stats]'"
        ) from None

    def names(text: str | None) -> list[str] | None:
        return [name.strip() for name in text.split(",") if name.strip()] if text else None

    out = arguments.out
    produced = ["cohort.json", "cohort.md", "roc.png"]
    if out is not None:
        if out.exists() and not out.is_dir():
            raise CementLeakageError(f"--out {out} is a file, not a folder: give a folder for the results")
        existing = [name for name in produced if (out / name).exists()]
        if existing and not arguments.force:
            raise CementLeakageError(
                f"{out} already holds {', '.join(existing)}: choose another --out folder or pass --force"
            )
    table = read_cohort_csv(arguments.csv)
    analysis = analyse_cohort(
        table, arguments.outcome, names(arguments.factors), names(arguments.categorical)
    )
    document = analysis_to_dict(analysis)
    markdown = format_tables_markdown(analysis)
    if not analysis.roc:
        produced.remove("roc.png")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out, prefix=".cementleakage-") as scratch:
            staged = Path(scratch)
            (staged / "cohort.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            (staged / "cohort.md").write_text(markdown + "\n", encoding="utf-8")
            if "roc.png" in produced:
                write_roc_plot(analysis, staged / "roc.png")
            for name in produced:
                os.replace(staged / name, out / name)
    print(json.dumps(document) if arguments.json else markdown)
    return 0


def check_out_folder(out: Path | None, force: bool) -> None:
    """Refuse an ``--out`` before measuring, as the bundle writer would after (see
    :func:`case_export.check_bundle_destination`)."""
    if out is not None:
        check_bundle_destination(out, force)


def write_bundle(arguments: argparse.Namespace, measured: list, ct, extra_files=None) -> list[Path]:
    """Write the audit bundle of the measured levels into ``--out`` (see :mod:`measurement_bundle`)."""
    from .measurement_bundle import MeasuredLevel, write_measurement_bundle

    levels = []
    for record, result, names in measured:
        body_name, cement_name = names or (arguments.body_segment, arguments.cement_segment)
        segmentation = getattr(arguments, "segmentation", None)
        levels.append(MeasuredLevel(record, result, segmentation, body_name, cement_name))
    return write_measurement_bundle(
        arguments.out,
        levels,
        ct,
        force=arguments.force,
        anonymize=getattr(arguments, "anonymize", False),
        extra_files=extra_files,
    )


def run_verify(arguments: argparse.Namespace) -> int:
    """Re-measure a bundle from its stored masks and points; exit 1 when a number differs."""
    from .bundle_verify import format_verification, verify_bundle

    verification = verify_bundle(arguments.folder)
    if arguments.json:
        print(
            json.dumps(
                {
                    "folder": verification.folder,
                    "all_match": verification.all_match,
                    "checks": [vars(check) for check in verification.checks],
                }
            )
        )
    else:
        print(format_verification(verification))
    return 0 if verification.all_match else EXIT_MISMATCH


def format_measurement(record: dict) -> str:
    """A short human-readable summary of one measurement."""
    flag = "ABOVE" if record["exceeds_cutoff"] else "below"
    near = " (near it: the flag may fall either way)" if record.get("near_cutoff") else ""
    lines = [
        f"Level {record['level'] or '(unnamed)'}, puncture side {record['side']}",
        f"  VBV    {record['vbv_cm3']:8.3f} cm3",
        f"  BCV    {record['bcv_cm3']:8.3f} cm3   BCV/VBV   {record['bcv_vbv_pct']:6.2f} %",
        f"  PSBCV  {record['psbcv_cm3']:8.3f} cm3   PSBCV/VBV {record['psbcv_vbv_pct']:6.2f} %",
        f"  Extravertebral cement {record['extravertebral_cement_cm3']:.3f} cm3",
        f"  PSBCV/VBV% is {flag} the {record['cutoff_pct']:g}% cut-off{near}. {record['interpretation']}",
    ]
    for rule in record.get("risk_rules", []):
        status = "" if rule["verified"] else " [unverified rule]"
        verdict = "FLAGGED" if rule["flagged"] else "not flagged"
        lines.append(
            f"  Rule {rule['rule']}: {rule['metric']} {rule['value']:.2f} vs {rule['threshold']:g}"
            f" {rule['unit']}: {verdict}{status}"
        )
        values = rule.get("predictive_values")
        if values:
            mark = "" if values["verified"] else " (figures not verified against the article)"
            lines.append(f"    {values['meaning']}{mark}")
        by_level = rule.get("leakage_by_level", {})
        if by_level.get("available") is False and by_level.get("note"):
            lines.append(f"    Per-level leakage rate: {by_level['note']}")
        elif "rate_pct" in by_level:
            lines.append(
                f"    Paper's leakage at {by_level['level']}: {by_level['leaked']} of {by_level['treated']}"
                f" ({by_level['rate_pct']:.1f}%)"
            )
    lines.extend(f"  warning: {warning}" for warning in record["warnings"])
    return "\n".join(lines)


def run_demo(arguments: argparse.Namespace) -> int:
    """Write a synthetic postoperative CT, measure it with ``measure`` and compare with its truth."""
    from .image_io import write_volume
    from .phantom import PhantomSpec, make_phantom

    phantom = make_phantom(PhantomSpec(side=arguments.side))
    truth = phantom.truth
    check_out_folder(arguments.out, arguments.force)
    ct_name = f"demo_{level_file_stem(truth.level)}_ct.nrrd"
    with tempfile.TemporaryDirectory() as scratch:
        ct_path = Path(scratch) / ct_name
        write_volume(phantom.ct.array_hu, phantom.ct.geometry, ct_path)
        from .multi_level import LevelRequest

        arguments.ct = str(ct_path)
        arguments.series_uid, arguments.segmentation = None, None
        arguments.body_segment, arguments.cement_segment = "Vertebral body", "Cement"
        request = LevelRequest(truth.level, truth.upper_ras, truth.lower_ras, arguments.side)
        measured, ct = run_measure(arguments, [request])
        record = measured[0][0]
        if arguments.out:
            write_bundle(
                arguments, measured, ct, extra_files=lambda folder, records: shutil.copy(ct_path, folder)
            )
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
    print(f"Synthetic postoperative CT: {ct_name if arguments.out else 'in a temporary folder'}")
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
    for stream in (sys.stdout, sys.stderr):
        # Units (cm³, ±, χ²) must not crash a terminal or pipe whose locale is not UTF-8.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        arguments = build_parser().parse_args(_join_negative_points(argv))
        if arguments.command == "demo":
            return run_demo(arguments)
        if arguments.command == "plan":
            return run_plan(arguments)
        if arguments.command == "cohort":
            return run_cohort(arguments)
        if arguments.command == "rules":
            return run_rules(arguments)
        if arguments.command == "verify":
            return run_verify(arguments)
        check_out_folder(arguments.out, arguments.force)
        measured, ct = run_measure(arguments)
        if arguments.out:
            write_bundle(arguments, measured, ct)
        records = [record for record, _, _ in measured]
        if arguments.json:
            print(json.dumps(records[0] if len(records) == 1 else {"levels": records}))
        else:
            print("\n\n".join(format_measurement(record) for record in records))
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
