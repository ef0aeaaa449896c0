"""How far the line between the endplate points leans against the vertebral body's own axis.

The body is segmented on a grid aligned with the line between the two points
(:mod:`vertebra_frame`), and the region its shell encloses (:mod:`shell_enclosure`) is built of
columns along that line within one outline that all slices share. Points marked off the middle of
their endplates in opposite directions tilt the line against the body, and the enclosed body
tilts with the line: the corners its tilted faces cut off are lost, and the body mask's own centre
line (:mod:`body_centre_line`) follows the points, so nothing shows it. On the L1 of the demo,
the points 3 mm to either side read VBV -4.4%, 3 mm in front and behind -5.5%, 6 mm -10.1%.
Where the lean is beyond its limits, the points are moved onto the body's axis and the body is
segmented again along it (:mod:`body_segmentation`); the split plane stays on the points as
marked, and the centre line's check then sees them off it.

The lean is read from the cross-sections found slice by slice before the enclosure, on the frame
grid (``[z, y, x]``: slices along the line, rows towards anterior, columns lateral):

- side to side, from the centroid of each cross-section's part in front of the axis (the
  pedicles and their roots lie behind it, and a vertebra rotated about its axis moves that
  centroid alike in every slice);
- front to back, from the front of each cross-section's widest rows (:func:`widest_band_front`):
  the posterior wall is cut at one depth for all slices (:mod:`pedicle_cuts`), so the
  cross-sections' own centroids show only part of a lean; the anterior wall's rim is cut short in
  the slices that an endplate sloping against them crosses (a wedged body), and bulges with
  osteophytes and leaks; behind the axis the pedicles' roots widen the rows of the upper slices.

Each is a straight line fitted over the middle of the height, weighted as the centre line's
window (``body_centre_line.WINDOW_RAMP``); the lean is the difference of its positions at the
two points. With the points on their endplates' midpoints, the 450 phantoms of the nine sweeps
(seeds 2026 to 2034) read a median of 0.04 mm side to side, at most 0.66 mm. Front to back, 146
of them (all the wedged bodies of seeds 2030-2034, the first 99 of seeds 2026-2027) and a faint
T8 of seed 2036 (:data:`WIDEST_ROW_SHARE`) read at most 2.03 mm, where the anterior wall read up to
5.68 mm on wedged bodies; with the points 2-4 mm in front of and behind their middles on five
bodies, four of them wedged, the anterior wall read 15 of 30 placements the wrong way (a T12
wedged to 70%, its points 4 mm apart: -12.5 mm against a true +8 mm), the widest rows' front none
(a median of 89% of the lean, the least 36%). A lean read short is read again once followed
(:func:`body_segmentation._segmented_along_axis`).

Past about 25 degrees the cross-sections are cut by the endplates where the line leaves them, and
read the lean short or the wrong way. Side to side it is then read from the tilt of the enclosed
body's faces (:func:`face_tilt_lateral_mm`, :func:`faces_show_a_lean`), which read it whole
where the cross-sections read part of it at any angle: the rounds along the axis start from the
faces where they lead (:func:`faces_lead_the_lean`), and follow them up to
``MAX_FACE_FOLLOWED_DEG``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .body_centre_line import WINDOW_RAMP
from .vertebra_frame import VertebraFrame

LATERAL_LEAN_MM = 2.0
"""A side-to-side lean (mm between the two points) beyond this is named and followed."""
ANTERIOR_LEAN_MM = 3.0
"""A front-to-back lean (mm between the two points) beyond this is named and followed: with the
points on their endplates' middles, the sweeps' bodies read up to 2.03 mm."""
SETTLED_SHARE = 0.25
"""The body is segmented again along the axis read until what is left of the lean is under this
share of the limits above."""
WIDEST_ROW_SHARE = 0.9
"""A cross-section's position front to back is read at the most anterior of its rows that hold at
least this share as many pixels as its widest row in front of the axis (:func:`widest_band_front`):
on an elliptic cross-section, 44% of the way from its middle to its anterior wall. A widest row
wider than the median of the widest rows over the middle of the height (the slices of full
weight in the window) counts as that median: a vertebra rotated 20 degrees about its axis brings
its pedicles' roots up to 2 mm in front of the axis in the upper slices (a faint biconcave T8 of
the seed-2036 sweep, its points on its endplates' middles, read 6.6 mm front to back from each
slice's own widest row, 0.9 mm so)."""
MIN_SLICES = 3
"""Fewest slices within the window for the lean to be read."""
MAX_FOLLOWED_DEG = 30.0
"""A lean read beyond this angle (degrees) is named but not followed, and no points are moved to
where they would tilt further than this from the line as marked: both points 6 mm off their
endplates' middles in opposite directions tilt the line of the demo's 25 mm L1 by 26 degrees; a
reading of 33 degrees came from a T6 whose points were 6 mm off and had moved 9 mm into the body
along the tilted line."""
MAX_FACE_FOLLOWED_DEG = 40.0
"""A side-to-side lean read from the body's faces (:func:`lean_from_faces`) is followed up to this
angle (degrees): the faces read the lean of the five leaning bodies of the misplaced-points
benchmark, their points 6-7 mm to either side of their middles (26-39 degrees), at 75-101% (19
of 20 at 95-101%), where the cross-sections read it the wrong way or not at all. Followed only
to ``MAX_FOLLOWED_DEG``, 9 of the 16 placements on its four wedged bodies (17-22 mm high) were
named and read VBV -2.7% to -7.6%, and 3 were refused; followed to this, all 16 read -0.3% to
+1.1%."""
STATED_LEAN_MM = 1.0
"""A direction of the lean is stated in the warning from this much (mm between the points)."""
OVERSHOOT_SHARE = 0.25
"""A lean read again along the axis it pointed to that turns back past it by more than this share
of itself is the body's shape, not a tilt of its axis (:meth:`AxisLean.overshot`). Read on
cross-sections that lean, a tilt comes out short of the whole, and what is left points the same
way: the demo's L1 with its points 3 mm to the sides reads 3.3 mm of the 6 mm, then 1.7 mm. The
real L2 of the tests, its points on one column through the labelled body, reads 2.8 mm side to
side, then -1.7 mm (:func:`body_segmentation._segmented_along_axis`)."""
SHAPE_LEAN_FACTOR = 2.0
"""A lean whose rounds along the axis turn back past it is taken for the body's shape, and not
named, only within this many times its limits (``LATERAL_LEAN_MM``, ``ANTERIOR_LEAN_MM``;
:attr:`AxisLean.within_shape`). The real L2 of the tests, its points on one column through the
labelled body, reads 2.85 mm side to side and 1.78 mm front to back; with its points 2-4 mm to
either side of their middles, 4.4-7.3 mm side to side, and its rounds turn back there too, its
mask 2-12% smaller than on one column."""
AXIS_ROUNDS = 3
"""Most segmentations along the axis read: each reads the lean left on cross-sections that still
lean a little, which come out short of the whole."""


@dataclass(frozen=True)
class AxisLean:
    """Where the body's own axis crosses the planes of the lower and the upper endplate point,
    in the frame of the points (mm; lateral along ``VertebraFrame.lateral_ras``, anterior along
    ``VertebraFrame.anterior_ras``). Read from the cross-sections (:func:`axis_lean`), the
    front-to-back position is known only relative to the points' midpoint, and its mean is 0;
    between the points as marked and those the body was segmented along, it is where they lie."""

    lower_lateral_mm: float
    upper_lateral_mm: float
    lower_anterior_mm: float
    upper_anterior_mm: float

    @property
    def lateral_mm(self) -> float:
        """Side-to-side lean: how far the axis moves between the lower and the upper point (mm)."""
        return self.upper_lateral_mm - self.lower_lateral_mm

    @property
    def anterior_mm(self) -> float:
        """Front-to-back lean: how far the axis moves between the lower and the upper point (mm)."""
        return self.upper_anterior_mm - self.lower_anterior_mm

    @property
    def magnitude_mm(self) -> float:
        """How far the axis moves against the line between the points, in any direction (mm)."""
        return float(np.hypot(self.lateral_mm, self.anterior_mm))

    @property
    def named(self) -> bool:
        """Whether the lean exceeds ``LATERAL_LEAN_MM`` or ``ANTERIOR_LEAN_MM``."""
        return abs(self.lateral_mm) > LATERAL_LEAN_MM or abs(self.anterior_mm) > ANTERIOR_LEAN_MM

    def followed(self, height_mm: float, max_deg: float = MAX_FOLLOWED_DEG) -> bool:
        """Whether the lean is named and is within ``max_deg`` (degrees) over ``height_mm``: beyond
        it the reading is not the body's axis (points far off their endplates)."""
        return self.named and self.degrees(height_mm) <= max_deg

    def overshot(self, before: AxisLean) -> bool:
        """Whether this lean, read along the axis that ``before`` pointed to, turns back past it
        by more than ``OVERSHOOT_SHARE`` of ``before`` in a direction where ``before`` was beyond
        its limit (``LATERAL_LEAN_MM``, ``ANTERIOR_LEAN_MM``)."""
        directions = (
            (self.lateral_mm, before.lateral_mm, LATERAL_LEAN_MM),
            (self.anterior_mm, before.anterior_mm, ANTERIOR_LEAN_MM),
        )
        return any(
            now * then < 0.0 and abs(then) > limit and abs(now) > OVERSHOOT_SHARE * abs(then)
            for now, then, limit in directions
        )

    @property
    def within_shape(self) -> bool:
        """Whether the lean is within ``SHAPE_LEAN_FACTOR`` times both limits: as far as a body's
        own shape moves its cross-sections."""
        return (
            abs(self.lateral_mm) <= SHAPE_LEAN_FACTOR * LATERAL_LEAN_MM
            and abs(self.anterior_mm) <= SHAPE_LEAN_FACTOR * ANTERIOR_LEAN_MM
        )

    @property
    def settled(self) -> bool:
        """Whether the lean is under ``SETTLED_SHARE`` of both limits."""
        return (
            abs(self.lateral_mm) < SETTLED_SHARE * LATERAL_LEAN_MM
            and abs(self.anterior_mm) < SETTLED_SHARE * ANTERIOR_LEAN_MM
        )

    def degrees(self, height_mm: float) -> float:
        """The angle (degrees) between the line of the points, ``height_mm`` apart, and the axis."""
        return float(np.degrees(np.arctan(self.magnitude_mm / height_mm)))

    def points_on_axis(
        self, frame: VertebraFrame, points_ras: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``points_ras`` (upper, lower; RAS mm) moved onto the body's axis read in ``frame``:
        each to the foot of its perpendicular on the axis, in the plane through it square to
        the axis (an endplate's, for a point on a flat endplate). Returns ``(upper, lower)``."""
        lower_on, upper_on = frame.to_ras(
            [
                [self.lower_lateral_mm, self.lower_anterior_mm, 0.0],
                [self.upper_lateral_mm, self.upper_anterior_mm, frame.height_mm],
            ]
        )
        direction = (upper_on - lower_on) / np.linalg.norm(upper_on - lower_on)
        feet = [
            lower_on + float((np.asarray(point, float) - lower_on) @ direction) * direction
            for point in points_ras
        ]
        return feet[0], feet[1]


def axis_lean(
    body: np.ndarray,
    slices: list[int] | np.ndarray,
    axial_mm: np.ndarray,
    height_mm: float,
    centre: tuple[int, int],
    spacing_mm: float,
) -> AxisLean | None:
    """The body's axis against the line of the points, read from its cross-sections ``body[z]``
    for ``z`` in ``slices`` (bool, frame grid ``[z, y, x]`` of ``spacing_mm`` pixels, the points'
    line through pixel ``centre``, row and column, ``axial_mm`` each slice's height above the
    lower point); None when fewer than ``MIN_SLICES`` slices with a body lie within the window."""
    start, full = WINDOW_RAMP
    heights, weights, lateral, widths = [], [], [], []
    for z in slices:
        share = float(axial_mm[z]) / height_mm
        weight = float(np.clip((min(share, 1.0 - share) - start) / (full - start), 0.0, 1.0))
        front = body[z, centre[0] :, :]
        if weight <= 0.0 or not front.any():
            continue
        heights.append(float(axial_mm[z]) - 0.5 * height_mm)
        weights.append(weight)
        lateral.append((float(np.nonzero(front)[1].mean()) - centre[1]) * spacing_mm)
        widths.append(np.count_nonzero(body[z], axis=1))
    if len(heights) < MIN_SLICES:
        return None
    middle = [row_widths for row_widths, weight in zip(widths, weights) if weight >= 1.0] or widths
    typical = float(np.median([row_widths[centre[0] :].max() for row_widths in middle]))
    fronts = [
        (widest_band_front(row_widths, centre[0], typical) - centre[0]) * spacing_mm for row_widths in widths
    ]
    at_points = np.array([-0.5 * height_mm, 0.5 * height_mm])
    root_weights = np.sqrt(weights)
    lower_lateral, upper_lateral = np.polyval(np.polyfit(heights, lateral, 1, w=root_weights), at_points)
    lower_front, upper_front = np.polyval(np.polyfit(heights, fronts, 1, w=root_weights), at_points)
    half_anterior = 0.5 * float(upper_front - lower_front)
    return AxisLean(float(lower_lateral), float(upper_lateral), -half_anterior, half_anterior)


def widest_band_front(row_widths: np.ndarray, centre_row: int, typical: float) -> float:
    """The front of a cross-section's widest rows, given the pixels each of its rows holds
    (``row_widths``, rows towards anterior, some from ``centre_row`` forward): the most anterior
    row that holds at least ``WIDEST_ROW_SHARE`` of its widest row from ``centre_row`` forward,
    or of ``typical`` pixels where that row is wider."""
    widest = min(float(row_widths[centre_row:].max()), typical)
    return float(np.flatnonzero(row_widths >= WIDEST_ROW_SHARE * widest).max())


def axis_lean_warning(lean: AxisLean, height_mm: float, moved_mm: tuple[float, float] | None) -> str:
    """The warning for a line of the points, ``height_mm`` apart, that leans against the body by
    ``lean``: as read (:attr:`AxisLean.named`), or between the points as marked and those the
    body was segmented along, moved ``moved_mm`` (upper, lower; mm) onto its axis; ``moved_mm``
    None when the body was not segmented along it."""
    parts = [
        f"{abs(lean_mm):.1f} mm {direction}"
        for lean_mm, direction in ((lean.lateral_mm, "side to side"), (lean.anterior_mm, "front to back"))
        if abs(lean_mm) >= STATED_LEAN_MM
    ]
    moves = " and ".join(parts) or "under 1 mm"
    text = (
        f"the line between the endplate points leans {lean.degrees(height_mm):.0f} degrees against the "
        f"vertebral body's own axis (the body moves {moves} against it between the points): "
    )
    if moved_mm is None:
        text += (
            "the body mask leans with the line, and its faces square to the line gain or lose the corners "
            "they cut (VBV off by several per cent)"
        )
    else:
        text += (
            f"the body was segmented along its own axis, the points moved onto it by {moved_mm[0]:.1f} mm "
            f"(upper) and {moved_mm[1]:.1f} mm (lower); the split plane goes through the points as marked"
        )
    return text + "; mark each point at the middle of its endplate, in a coronal and a sagittal view"


FACE_INNER_SHARE = 0.5
"""The endplates' tilt is read over the columns at least this share as deep inside the body's
footprint as its deepest column (:func:`face_tilt_lateral_mm`): rims, osteophytes and the
corners that faces square to a tilted line cut off lie outside them."""
FACE_TILT_NAMED_DEG = 12.0
"""A side-to-side tilt of the body's faces (degrees, the mean of the two endplates') beyond
this, where the cross-sections read no such lean, is named and followed
(:func:`faces_show_a_lean`). With the points on their endplates' middles, the faces of the 1050
phantoms of the 21 sweep sets tilt at most 5.8 degrees side to side (a T6 on 2 mm slices), and
none names a lean; the seed-2036 set at random slice phases, 6.3 degrees (a T11 with a Schmorl's
node on 2 mm slices). Bodies tilted up to 20 degrees against 1.5 and 2 mm slices read at most
1.8 degrees."""
FACE_MIN_COLUMNS = 20
"""Fewest inner columns for the faces' tilt to be read."""


def face_tilt_lateral_mm(
    body: np.ndarray, axial_mm: np.ndarray, height_mm: float, spacing_mm: float
) -> float | None:
    """The body's side-to-side lean against the line of the points (mm between the lower and the
    upper point, as :attr:`AxisLean.lateral_mm`), read from the tilt of its enclosed faces: a
    body whose axis leans by an angle against the line has both endplates tilted by it in the
    frame, a wedge tilts them against each other. ``body`` is the enclosed body (bool, frame
    grid ``[z, y, x]`` of ``spacing_mm`` pixels, slices ``axial_mm`` above the lower point); each
    inner column's highest and lowest voxel give its faces, a plane is fitted to each, and the
    lean is ``height_mm`` times the tangent of their mean tilt along the columns. None with fewer
    than ``FACE_MIN_COLUMNS`` inner columns.

    Cross-sections square to a line that leans far against the body are cut by the endplates
    where the line leaves them, and their centroids move away from those cuts, against the
    axis: the demo's L1, its points 6 mm to either side of their middles (26 degrees), read
    0.7 mm from its cross-sections; its faces read 25 degrees."""
    footprint = body.any(axis=0)
    depth = ndimage.distance_transform_edt(footprint)
    if depth.max() <= 0.0:
        return None
    inner = depth >= FACE_INNER_SHARE * depth.max()
    if inner.sum() < FACE_MIN_COLUMNS:
        return None
    rows, columns = np.nonzero(inner)
    order = np.argsort(axial_mm)
    ordered = body[order][:, rows, columns]
    heights = np.asarray(axial_mm, float)[order]
    lowest = heights[np.argmax(ordered, axis=0)]
    highest = heights[len(heights) - 1 - np.argmax(ordered[::-1], axis=0)]
    design = np.column_stack([columns * spacing_mm, rows * spacing_mm, np.ones(len(rows))])
    slopes = [np.linalg.lstsq(design, face, rcond=None)[0][0] for face in (lowest, highest)]
    return float(-height_mm * 0.5 * (slopes[0] + slopes[1]))


def faces_show_a_lean(face_lateral_mm: float | None, read: AxisLean | None, height_mm: float) -> bool:
    """Whether the faces' side-to-side lean (``face_lateral_mm``, :func:`face_tilt_lateral_mm`,
    over ``height_mm``) tilts beyond ``FACE_TILT_NAMED_DEG`` where the cross-sections' reading
    (``read``) does not name a lean beyond ``LATERAL_LEAN_MM`` the same way. Past about 25
    degrees the cross-sections read the lean the wrong way: the demo's L1, its points 7 mm to
    either side of their middles (29 degrees), read 3.8 mm from its cross-sections against
    -14 mm, and its faces -15.9 mm."""
    if face_lateral_mm is None:
        return False
    if float(np.degrees(np.arctan(abs(face_lateral_mm) / height_mm))) <= FACE_TILT_NAMED_DEG:
        return False
    return read is None or read.lateral_mm * np.sign(face_lateral_mm) <= LATERAL_LEAN_MM


def faces_lead_the_lean(face_lateral_mm: float | None, read: AxisLean | None, height_mm: float) -> bool:
    """Whether the rounds along the body's axis start from the faces' side-to-side lean
    (``face_lateral_mm``, :func:`lean_from_faces`) rather than the cross-sections' reading
    (``read``) over ``height_mm``: where the faces show a lean the cross-sections do not
    (:func:`faces_show_a_lean`), or where the cross-sections name a lean beyond
    ``LATERAL_LEAN_MM`` side to side and the faces read more of it the same way.

    Cross-sections square to a leaning line read part of its side-to-side lean, or read it the
    wrong way, and may read a front-to-back lean where there is none; the faces read the
    side-to-side one whole. On the five leaning bodies of the misplaced-points benchmark, their
    points 2-4 mm to either side of their middles, the faces read 91-101% of the lean and the
    cross-sections from -91% to 67% (the demo's L1 at 3 mm: 6.2 mm of 6.2 mm, the cross-sections
    3.1 mm, and 1.6 mm front to back of none; started from them, the rounds took three
    segmentations to settle, from the faces one)."""
    if face_lateral_mm is None:
        return False
    if faces_show_a_lean(face_lateral_mm, read, height_mm):
        return True
    return (
        read is not None
        and abs(read.lateral_mm) > LATERAL_LEAN_MM
        and read.lateral_mm * face_lateral_mm > 0.0
        and abs(face_lateral_mm) > abs(read.lateral_mm)
    )


def lean_from_faces(read: AxisLean | None, face_lateral_mm: float) -> AxisLean:
    """The lean the faces show (``face_lateral_mm``, side to side): the axis crosses the middle of
    the height where the cross-sections' fitted line does (at the points' line without a
    reading) and moves ``face_lateral_mm`` between the points, and none front to back:
    cross-sections cut by tilted endplates read that no better. A wedged L4 tilted 15 degrees,
    its points 4 mm to either side of their middles, read 5.6 mm side to side the wrong way and
    6.3 mm front to back where it leans none (VBV +11.1%, the lean named); its faces read -7.9
    mm of the -8 mm, and followed with no lean front to back it reads VBV +0.6%."""
    middle = 0.0 if read is None else 0.5 * (read.lower_lateral_mm + read.upper_lateral_mm)
    half = 0.5 * face_lateral_mm
    return AxisLean(middle - half, middle + half, 0.0, 0.0)
