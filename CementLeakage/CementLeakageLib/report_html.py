"""The clinician's report of a case as one self-contained HTML page.

The page carries its figures as base64 PNG data URIs and its style inline: no external
links, fonts or scripts, so it opens the same offline and can be archived as one file.
Per level it shows the PSBCV/VBV% flag, the volumes (cm³, 2 decimals) and ratios (%,
2 decimals), the cut-off's published accuracy, any predictive values and warnings and the
figure; then the provenance of the numbers. Every text from the document is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from pathlib import Path
from typing import Optional

from .cement_curvature import CT_BLUR_SIGMA_MM
from .errors import CementLeakageError

STYLE = """
body { font-family: Arial, Helvetica, sans-serif; margin: 24px; color: #222; max-width: 1700px; }
h1 { font-size: 26px; margin-bottom: 4px; }
h2 { font-size: 22px; border-bottom: 2px solid #ccc; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 17px; margin-bottom: 6px; }
.flag { font-size: 24px; font-weight: bold; padding: 14px 18px; border-radius: 6px; color: #fff; }
.flag.above { background: #c62828; }
.flag.below { background: #2e7d32; }
table { border-collapse: collapse; margin: 10px 0; }
th, td { border: 1px solid #bbb; padding: 5px 10px; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
.note { color: #444; font-size: 14px; }
.warnings { background: #fff3cd; border: 1px solid #e0c060; padding: 8px 14px; }
.unverified { color: #a15c00; font-weight: bold; }
img.figure { max-width: 100%; height: auto; border: 1px solid #ccc; }
code { font-size: 12px; word-break: break-all; }
"""

VOLUME_ROWS = (
    ("vbv_cm3", "Vertebral body volume (VBV)", "cm³"),
    ("bcv_cm3", "Bone cement in the body (BCV)", "cm³"),
    ("psbcv_cm3", "Puncture-side bone cement (PSBCV)", "cm³"),
    ("bcv_vbv_pct", "BCV/VBV", "%"),
    ("psbcv_vbv_pct", "PSBCV/VBV", "%"),
    ("extravertebral_cement_cm3", "Cement outside the body (extravertebral)", "cm³"),
)
"""Rows of the numbers table: record key, label and unit."""


def text(value: object) -> str:
    """Any value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def number(value: object, digits: int = 2) -> str:
    """A number with ``digits`` decimals, or the escaped value when it is not a number."""
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return text(value)


def flag_banner(record: dict) -> str:
    """The level's flag: red when PSBCV/VBV% is above the cut-off, green otherwise."""
    cutoff = number(record.get("cutoff_pct", ""))
    ratio = number(record.get("psbcv_vbv_pct", ""))
    near = " (near the cut-off: the flag may fall either way)" if record.get("near_cutoff") else ""
    if record.get("exceeds_cutoff"):
        return (
            f'<div class="flag above">Above the {cutoff}% cut-off: PSBCV/VBV {ratio}% '
            f"(higher published risk of paravertebral venous cement leakage){near}</div>"
        )
    return f'<div class="flag below">Not above the {cutoff}% cut-off: PSBCV/VBV {ratio}%{near}</div>'


def numbers_table(record: dict) -> str:
    """Volumes (cm³) and ratios (%) of one level, 2 decimals."""
    rows = [
        f'<tr><th>{text(label)}</th><td class="number">{number(record[key])}</td><td>{text(unit)}</td></tr>'
        for key, label, unit in VOLUME_ROWS
        if key in record
    ]
    rows.append(
        f'<tr><th>Cut-off (PSBCV/VBV)</th><td class="number">{number(record.get("cutoff_pct", ""))}</td>'
        "<td>%</td></tr>"
    )
    return '<table class="numbers">' + "".join(rows) + "</table>"


def cutoff_paragraph(record: dict) -> str:
    """The cut-off's published sensitivity, specificity and AUC with its source."""
    parts = []
    if "cutoff_sensitivity_pct" in record:
        parts.append(f"sensitivity {number(record['cutoff_sensitivity_pct'], 1)}%")
    if "cutoff_specificity_pct" in record:
        parts.append(f"specificity {number(record['cutoff_specificity_pct'], 1)}%")
    if "cutoff_auc" in record:
        parts.append(f"AUC {number(record['cutoff_auc'], 3)}")
    accuracy = ", ".join(parts) if parts else "accuracy not given"
    source = text(record.get("cutoff_source", ""))
    paragraph = f'<p class="note">Published accuracy of the cut-off: {accuracy}. Source: {source}.</p>'
    if record.get("interpretation"):
        paragraph += f'<p class="note">{text(record["interpretation"])}</p>'
    return paragraph


def risk_rules_section(record: dict) -> str:
    """The risk rules evaluated for the level, with their predictive values when present."""
    rules = record.get("risk_rules") or []
    if not rules:
        return ""
    items = []
    for rule in rules:
        flagged = "flagged" if rule.get("flagged") else "not flagged"
        unit = rule.get("unit", "")
        line = (
            f"<li><b>{text(rule.get('title') or rule.get('rule', ''))}</b>: {text(flagged)} "
            f"(value {number(rule.get('value', ''))} {text(unit)}, threshold "
            f"{number(rule.get('threshold', ''))} {text(unit)})"
        )
        if not rule.get("verified", False):
            line += ' <span class="unverified">(rule not verified in its source)</span>'
        values = rule.get("predictive_values")
        if values:
            line += (
                f"<br>PPV {number(values.get('ppv_pct', ''), 1)}%, "
                f"NPV {number(values.get('npv_pct', ''), 1)}%: {text(values.get('meaning', ''))}"
            )
            if not values.get("verified", False):
                line += ' <span class="unverified">(from unverified figures)</span>'
        items.append(line + "</li>")
    return "<h3>Risk rules</h3><ul>" + "".join(items) + "</ul>"


def warnings_section(record: dict) -> str:
    """The level's warnings as a highlighted list, or nothing."""
    warnings = record.get("warnings") or []
    if not warnings:
        return ""
    items = "".join(f"<li>{text(warning)}</li>" for warning in warnings)
    return f'<div class="warnings"><h3>Warnings</h3><ul>{items}</ul></div>'


def image_tag(path: Optional[Path], alt: str) -> str:
    """An ``img`` tag holding the PNG at ``path`` as a base64 data URI (empty without a path)."""
    if path is None:
        return ""
    path = Path(path)
    if not path.is_file():
        raise CementLeakageError(f"the report figure {path} does not exist: write the figures first")
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise CementLeakageError(f"the report figure {path} is not a PNG image: give PNG figures")
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="figure" alt="{text(alt)}" src="data:image/png;base64,{encoded}">'


def points_text(point: object) -> str:
    """An RAS point as ``R, A, S`` (mm, 2 decimals)."""
    try:
        return ", ".join(f"{float(value):.2f}" for value in point)
    except (TypeError, ValueError):
        return text(point)


def blur_text(record: dict) -> str:
    """The CT's blur (SD, mm, 2 decimals) measured on the bolus's edges, or what stood instead:
    the standard kernel's blur assumed by the automatic masks, or nothing when masks were given."""
    measured = record.get("ct_blur_sigma_mm")
    if measured is not None:
        return f"{number(measured)} (measured on the cement's edges)"
    if record.get("segmentation_source") == "automatic":
        return f"not measured; {CT_BLUR_SIGMA_MM:.2f} assumed"
    return "not measured (masks given)"


def key_value_table(values: dict) -> str:
    """A two-column table of keys and escaped values."""
    rows = "".join(
        f"<tr><th>{text(key)}</th><td><code>{text(value)}</code></td></tr>" for key, value in values.items()
    )
    return f"<table>{rows}</table>"


def level_section(record: dict, figure: Optional[Path]) -> str:
    """One level's section: flag, numbers, evidence, warnings and figure."""
    level = record.get("level") or "vertebra"
    side = record.get("side", "")
    return (
        f"<section><h2>Level {text(level)} ({text(side)} puncture)</h2>"
        + flag_banner(record)
        + numbers_table(record)
        + cutoff_paragraph(record)
        + risk_rules_section(record)
        + warnings_section(record)
        + image_tag(figure, f"Figure of level {level}")
        + "</section>"
    )


def provenance_section(document: dict) -> str:
    """Software version, export time, input identity and, per level, parameters, points and segments."""
    parts = [
        "<section><h2>Provenance</h2>",
        key_value_table(
            {
                "Software version": document.get("software_version", ""),
                "Exported (UTC)": document.get("exported_utc", ""),
            }
        ),
        "<h3>Input</h3>",
        key_value_table(document.get("input") or {}),
    ]
    for record in document.get("levels", []):
        level = record.get("level") or "vertebra"
        parts.append(f"<h3>Level {text(level)}</h3>")
        parts.append(
            key_value_table(
                {
                    "Upper endplate midpoint (RAS mm)": points_text(record.get("upper_ras", [])),
                    "Lower endplate midpoint (RAS mm)": points_text(record.get("lower_ras", [])),
                    "Split plane normal (RAS, to the puncture side)": points_text(
                        record.get("plane_normal_ras", [])
                    ),
                    "Segmentation": record.get("segmentation_source", ""),
                    "Input source": record.get("input_source", ""),
                    "Input SHA-256": record.get("input_sha256", ""),
                    "Voxel volume (mm³)": number(record.get("voxel_volume_mm3", ""), 4),
                    "CT blur (SD, mm)": blur_text(record),
                }
            )
        )
        if record.get("parameters"):
            parts.append("<p>Parameters</p>" + key_value_table(record["parameters"]))
        segments = record.get("segments") or {}
        if segments:
            rows = "".join(
                f"<tr><th>{text(role)}</th><td>{text(info.get('name', ''))}</td>"
                f"<td>{text('yes' if info.get('edited_by_hand') else 'no')}</td>"
                f"<td><code>{text(info.get('mask_sha256', ''))}</code></td></tr>"
                for role, info in segments.items()
            )
            parts.append(
                "<p>Segments measured</p><table><tr><th>Role</th><th>Segment</th>"
                f"<th>Edited by hand</th><th>Mask SHA-256</th></tr>{rows}</table>"
            )
    parts.append("</section>")
    return "".join(parts)


def report_html(document: dict, figures: dict[str, Path]) -> str:
    """The report page (HTML text) of a case ``document`` (the ``results.json`` layout).

    ``figures`` maps level names to PNG paths; levels without a figure are shown without one.
    """
    levels = document.get("levels") or []
    if not levels:
        raise CementLeakageError("the report has no levels: measure at least one vertebra first")
    flagged = [record.get("level", "") for record in levels if record.get("exceeds_cutoff")]
    summary = f"{len(flagged)} of {len(levels)} level(s) above the cut-off" + (
        f": {', '.join(flagged)}" if flagged else ""
    )
    sections = "".join(level_section(record, figures.get(record.get("level", ""))) for record in levels)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Bone cement report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Bone cement after vertebroplasty: puncture-side cement ratio</h1>"
        f'<p class="note">{text(summary)}. Exported {text(document.get("exported_utc", ""))} '
        "by CementLeakage "
        f"{text(document.get('software_version', ''))}. A risk indicator, not a diagnosis: confirm any "
        "leakage on the images.</p>"
        f"{sections}{provenance_section(document)}</body></html>\n"
    )


def write_report_html(path: str | os.PathLike, document: dict, figures: dict[str, Path]) -> Path:
    """Write the case's self-contained report page to ``path`` atomically and return the path."""
    path = Path(path)
    page = report_html(document, figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".html")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(page)
        _apply_umask_permissions(Path(temporary))
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def _apply_umask_permissions(path: Path) -> None:
    """Give a temporary file the permissions of an ordinary new file (umask), not private ones."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)
