"""When the body's first cross-sections give way to those closed at the lowest shell level.

The cross-sections are first found at the shell levels in turn (:mod:`body_cross_sections`). A
faint cortex closes at the first level only where cement or bone props it up, and the slices
whose cross-section comes out markedly smaller than the body's look again, lowest level first.
These rules say which slices look again (:func:`deficient_slices`) and when the lowest-level
cross-sections replace all the first ones (:func:`lost_throughout`). Masks are bool ``[z, y, x]``
on the vertebra's frame grid (:mod:`body_settings`), rows increasing towards anterior; areas are
compared in pixels of that grid.
"""

from __future__ import annotations

import numpy as np

DEFICIENT_AREA_FRACTION = 0.9
"""A slab slice whose cross-section is smaller than this fraction of the body's large
cross-sections (upper quartile) may have lost part of its shell."""


def deficient_slices(body: np.ndarray, interiors: dict[int, np.ndarray]) -> list[int]:
    """Slices of ``interiors`` (all within the slab) whose cross-section is markedly smaller than
    the body's.

    Near the endplates too: above and below the cement a faint cortex has nothing to prop it up,
    and the ring found there may be the cement's blurred halo rather than the body's wall. Such a
    slice only takes a larger cross-section found from the lowest level, never a smaller one.
    """
    if len(interiors) < 4:
        return []
    areas = {z: int(body[z].sum()) for z in interiors}
    large = float(np.quantile(list(areas.values()), 0.75))
    return [z for z, area in areas.items() if area < DEFICIENT_AREA_FRACTION * large]


LOST_THROUGHOUT_RATIO = 1.15
"""When the lowest-level cross-sections are typically this many times larger than the first
ones, the first lost part of the body in most slices, not in a few."""
FAINT_CORTEX_RATIO = 1.02
"""The same where the cortex is faint (its edge below the bone threshold): the first rings then
run inside the body all round. 226 HU lies about 0.3 mm inside the edge of a 1 mm cortex of
300 HU (blur 0.6 mm), which is 3.0% (L5) to 4.7% (T5) of the cross-section: larger than this
ratio everywhere, while at 1.05 a 20 x 15 mm L1 (4.8% larger) kept the inner rings (VBV -4.1%)."""


FRONT_LOST_RATIO = 1.15
"""When the lowest-level cross-sections are typically this many times larger in front of the axis,
the first lost part of the body throughout, whatever their areas behind it."""
CANAL_TAKEN_RATIO = 1.15
"""Under a faint cortex, first cross-sections typically this many times larger behind the axis than
the lowest-level ones took in the spinal canal: a posterior wall too faint to close at their level
opens the body onto it. In front of the axis, where such rings run inside the faint cortex,
``FAINT_CORTEX_RATIO`` is then enough for the lowest-level ones to replace them (a T5 at 62%
height with a 300 HU cortex on 2 mm slices, its pedicles beside every slice so that no posterior
wall was set: 1.51 times larger behind the axis, 1.148 times smaller in front, and VBV +40.7%
with its first rings, +3.2% with the lowest-level ones). Without the canal a faint cortex's
lowest-level rings may be larger in front for other reasons (a biconcave T9 on 2 mm slices,
1.04 times, whose upper dish its shell then closed short of: VBV -5.4% instead of +0.4%)."""


def lost_throughout(
    body: np.ndarray,
    interiors: dict[int, np.ndarray],
    alternative: np.ndarray,
    alternative_interiors: dict[int, np.ndarray],
    faint_cortex: bool,
    axis_row: int,
) -> bool:
    """Whether the first cross-sections (``body`` in the slices of ``interiors``) lost part of the
    body throughout, so that the lowest-level ones (``alternative``, their outline at the cortex's
    edge) replace them all.

    A faint cortex that closes at 226 HU nowhere leaves the first rings to whatever bright bone
    happens to enclose the axis (cement, the pedicles' cortex); cut at a posterior wall set by
    those, most cross-sections come out a fraction of the body and only the smallest of them look
    deficient beside the others. Where it does close, 226 HU lies above its edge and the rings
    run inside the body. So the lowest-level cross-sections replace the first ones when they are
    typically ``LOST_THROUGHOUT_RATIO`` times larger, or ``FAINT_CORTEX_RATIO`` times where the
    cortex is faint (``faint_cortex``: its edge lies below the bone threshold). A dense cortex's
    edge lies above the lowest level, whose rings then run outside it.

    Behind the axis (row ``axis_row``) the first rings' areas hold whatever the posterior wall they
    set leaves of the pedicles, which can make up for what they lost in front: they are replaced
    too when their areas in front of the axis are typically ``FRONT_LOST_RATIO`` times smaller
    (``FAINT_CORTEX_RATIO`` where the cortex is faint and they are ``CANAL_TAKEN_RATIO`` times larger
    behind it: they took in the spinal canal).
    """
    if not interiors or not alternative_interiors:
        return False

    def median_areas(rows: slice) -> tuple[float, float]:
        """The median area of the first and of the lowest-level cross-sections within ``rows``."""
        first = float(np.median([body[z, rows].sum() for z in interiors]))
        lowest = float(np.median([alternative[z, rows].sum() for z in alternative_interiors]))
        return first, lowest

    def larger(rows: slice, ratio: float) -> bool:
        """Whether the lowest-level cross-sections' median area within ``rows`` is more than
        ``ratio`` times the first ones'."""
        first, lowest = median_areas(rows)
        return lowest > ratio * first

    behind_first, behind_lowest = median_areas(slice(None, axis_row))
    canal_taken = faint_cortex and behind_first > CANAL_TAKEN_RATIO * behind_lowest
    ratio = FAINT_CORTEX_RATIO if faint_cortex else LOST_THROUGHOUT_RATIO
    in_front = slice(axis_row, None)
    return larger(slice(None), ratio) or larger(
        in_front, FAINT_CORTEX_RATIO if canal_taken else FRONT_LOST_RATIO
    )
