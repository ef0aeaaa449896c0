"""Names and colours of the segments the package writes."""

from __future__ import annotations

BODY = "Vertebral body"
CEMENT = "Cement"
PUNCTURE_SIDE_CEMENT = "Puncture-side cement"
EXTRAVERTEBRAL_CEMENT = "Extravertebral cement"

SEGMENT_NAMES = (BODY, CEMENT, PUNCTURE_SIDE_CEMENT, EXTRAVERTEBRAL_CEMENT)
"""The four output segments, in the order they are written."""

SEGMENT_COLORS_RGB = {
    BODY: (0.945, 0.839, 0.569),
    CEMENT: (0.35, 0.75, 1.0),
    PUNCTURE_SIDE_CEMENT: (0.85, 0.25, 0.85),
    EXTRAVERTEBRAL_CEMENT: (1.0, 0.2, 0.15),
}
"""Display colours (RGB, 0-1): bone beige, cement light blue, puncture side magenta, leakage red."""


def level_segment_name(level: str, name: str) -> str:
    """Segment name inside a case's segmentation that holds several levels, e.g. ``L1 Cement``."""
    return f"{level} {name}" if level else name


def component_segment_name(index: int, location: str, side: str) -> str:
    """Segment name of an extravertebral cement component, e.g. ``Extravertebral 1: paravertebral, left``."""
    return f"Extravertebral {index}: {location}, {side}"


LISTED_NAMES_MAX = 10
"""Segment names a message lists before it only counts the rest: a CT read as a segmentation has
a segment for each of its thousands of intensities."""


def listed_names(names: list[str], limit: int = LISTED_NAMES_MAX) -> str:
    """``names`` quoted and joined for a message, the first ``limit`` of them and then how many
    more; ``none`` for no names."""
    if not names:
        return "none"
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
