"""The pedicles cut off the body's cross-sections on the frame grid (``[z, y, x]``, rows growing
anteriorly): at the posterior wall, at the outline of the slices free of them (the pedicle's
anterior edge), their roots column by column, and the fillets of bone where they join the side
walls."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from . import slicewise
from .measurement import voxels_across

WALL_WIDTH_AGREEMENT = 0.1
"""How much narrower (a fraction of the median over the slices) a cross-section may be in front of
the axis and still help set the posterior wall. A narrower one lost part of its ring: where a
basivertebral foramen opens the posterior wall, the ring falls back to the bone and cement inside
(a T5's foramen slices 16-21% narrower, reaching 4 mm less far back), while a wedged body's slices
by its faces lose only their front rows (at most 5% narrower)."""


def cut_at_posterior_wall(
    body: np.ndarray, slices: list[int], centre: tuple[int, int], quantile: float, tolerance_px: int
) -> list[int]:
    """Cut every slice at the body's posterior wall, i.e. at the pedicles' anterior edge.

    The wall is where the cross-sections that reach least far back end (the slices below the
    pedicles, where the body stands alone); ``quantile`` picks that depth among the slices as
    wide in front of the axis pixel ``centre`` (row, column) as the body
    (``WALL_WIDTH_AGREEMENT``). Returns the slices that reached more than ``tolerance_px``
    behind the wall (those that carry the pedicles).
    """
    depths = {}
    widths = {}
    for z in slices:
        rows = np.flatnonzero(body[z].any(axis=1))
        if rows.size:
            depths[z] = centre[0] - rows.min()
            widths[z] = int(body[z, centre[0] :].any(axis=0).sum())
    if not depths:
        return []
    least_width = (1.0 - WALL_WIDTH_AGREEMENT) * float(np.median(list(widths.values())))
    whole = [depth for z, depth in depths.items() if widths[z] >= least_width]
    wall = int(np.floor(centre[0] - np.quantile(whole, quantile)))
    if wall <= 0:
        return []
    body[:, :wall, :] = False
    return [z for z, depth in depths.items() if centre[0] - depth < wall - tolerance_px]


FREE_OUTLINE_AGREEMENT = 0.05
"""How far (a fraction of the median area in front of the axis of the slices that carry
pedicles) the outline of the slices free of them may fall short there and still bound the others;
the fillets' outline may not exceed it by more either. A shorter outline lost part of the body:
a faint shell's, or that of slices whose posterior wall a basivertebral foramen opens, which
reach less far back and pass for free of pedicles while their ring, open there, loses part of
the body."""


FREE_WALL_SHORTFALL_MM = 1.5
"""How far (mm) the outline of the slices free of pedicles may fall short, on the axis's column,
of the posterior wall of the slices that carry them (their median reach there) and still bound
them. A shorter outline lost its posterior wall: a basivertebral foramen opened it in every free
slice, and their rings, open there, closed across the trabecular bone in front of it. A faint
T5 on 2 mm slices, whose pedicles spanned every slice but the foramen's, fell 4.5 mm short, and
bounded by it the body lost 12% of its volume."""


def _front_areas(outline: np.ndarray, carrying: np.ndarray, centre: tuple[int, int]) -> tuple[float, float]:
    """Area (px) in front of the axis pixel ``centre`` of a pedicle-free ``outline`` (``[y, x]``)
    and the median of that of the cross-sections ``carrying`` pedicles (``[z, y, x]``)."""
    front = float(outline[centre[0] :].sum())
    return front, float(np.median(carrying[:, centre[0] :].sum(axis=(1, 2))))


def restrict_to_pedicle_free_outline(
    body: np.ndarray,
    slices: list[int],
    pedicle_slices: list[int],
    margin_px: int,
    centre: tuple[int, int],
    wall_shortfall_px: int,
) -> None:
    """Remove pedicle roots left in front of the posterior wall.

    Slices that do not carry pedicles stand free; the union of their outlines, grown by
    ``margin_px``, bounds the body in the slices that do, which cuts each pedicle at its
    anterior edge. Nothing is cut where that union falls short of the others in front of the
    axis pixel ``centre`` (row, column; ``FREE_OUTLINE_AGREEMENT``), nor where, on the axis's
    column, it ends more than ``wall_shortfall_px`` pixels in front of their posterior wall (the
    median of their reach there; ``FREE_WALL_SHORTFALL_MM``).
    """
    carrying = set(pedicle_slices)
    free = [z for z in slices if z not in carrying]
    if len(free) < 3 or not pedicle_slices:
        return
    reference = body[free].any(axis=0)
    front, front_of_pedicle_slices = _front_areas(reference, body[pedicle_slices], centre)
    if front < (1.0 - FREE_OUTLINE_AGREEMENT) * front_of_pedicle_slices:
        return
    if _wall_shortfall_px(reference, body[pedicle_slices], centre) > wall_shortfall_px:
        return
    if margin_px > 0:
        reference = (
            sitk.GetArrayFromImage(
                sitk.BinaryDilate(sitk.GetImageFromArray(reference.astype(np.uint8)), [margin_px, margin_px])
            )
            > 0
        )
    for z in pedicle_slices:
        body[z] &= reference


def _wall_shortfall_px(outline: np.ndarray, carrying: np.ndarray, centre: tuple[int, int]) -> float:
    """How many pixels less far back than the cross-sections ``carrying`` pedicles (``[z, y, x]``,
    the median of their reach) a pedicle-free ``outline`` (``[y, x]``) reaches on the column of
    the axis pixel ``centre`` (row, column), in front of which the body lies."""

    def reach(section: np.ndarray) -> float | None:
        rows = np.flatnonzero(section[: centre[0] + 1, centre[1]])
        return float(centre[0] - rows.min()) if rows.size else None

    carried = [depth for depth in map(reach, carrying) if depth is not None]
    if not carried:
        return 0.0
    return float(np.median(carried)) - (reach(outline) or 0.0)


POSTERIOR_PROFILE_TOLERANCE_MM = 1.0
"""Depth (mm) a column may reach behind the body's posterior profile before it is cut."""
ROOT_CHECK_MM = 1.0
"""How far (mm) behind a column's posterior edge bone must continue for the edge to be a root's."""
ROOT_PROFILE_QUANTILE = 0.1
"""Share of the slices that, column by column, set the posterior profile: the roots of pedicles
as tall as a compressed body leave only a few slices free of them."""


def cut_pedicle_roots(
    body: np.ndarray,
    hu: np.ndarray,
    bone_min_hu: float,
    slices: list[int],
    centre: tuple[int, int],
    quantile: float,
    spacing_mm: float,
) -> None:
    """Cut pedicle roots off the body's posterolateral corners, column by column (in place).

    A pedicle widens where it meets the body; what the opening of the cross-section and the
    straight cut at the posterior wall leave of it sits in front of the wall, at the corner.
    In every column (x of the ``[z, y, x]`` frame grid) the body's posterior profile is how far
    the slices reach behind the axis; ``quantile`` picks that reach among the slices (those
    without the roots). A slice's column is cut back to the profile (plus
    ``POSTERIOR_PROFILE_TOLERANCE_MM`` and the slice's own enlargement, the median excess over
    all its columns, which the roots' few columns and a foramen's gap do not move: an
    endplate's flare keeps its corners) only where bone (``hu`` at or above ``bone_min_hu``)
    continues behind its edge, i.e. where the edge is a cut through a pedicle and not the body's
    own cortex.
    """
    if len(slices) < 3:
        return
    stack = body[slices]
    present = stack.any(axis=1)
    counted = present.sum(axis=0) >= max(3, int(np.ceil(quantile * len(slices))))
    if not counted.any():
        return
    edge_row = np.argmax(stack, axis=1)
    reach = np.where(present, centre[0] - edge_row, np.nan)
    profile = np.full(reach.shape[1], np.inf)
    profile[counted] = np.nanquantile(reach[:, counted], quantile, axis=0)
    excess = reach - profile[None, :]
    enlargement = np.zeros(len(slices))
    for index, row in enumerate(excess):
        finite = row[np.isfinite(row)]
        if finite.size:
            enlargement[index] = max(0.0, float(np.median(finite)))
    behind_row = np.clip(edge_row - voxels_across(ROOT_CHECK_MM, spacing_mm), 0, None)
    columns = np.arange(stack.shape[2])[None, :]
    root = present & (hu[np.asarray(slices)[:, None], behind_row, columns] >= bone_min_hu)
    allowed = profile[None, :] + POSTERIOR_PROFILE_TOLERANCE_MM / spacing_mm + enlargement[:, None]
    allowed = np.where(root, allowed, np.inf)
    rows = np.arange(body.shape[1])[None, :, None]
    body[slices] = stack & ~((centre[0] - rows) > allowed[:, None, :])


FILLET_SHARE = 0.5
"""Share of the pedicle-free slices a pixel must lie in to belong to the body's posterior outline."""
FILLET_MAX_FRACTION = 0.12
"""A slice loses at most this fraction of its area to fillets; a larger cut is not a fillet's. Next
to the endplates of a thoracic body, rib heads widen the pedicles' fillets: a biconcave T6 at 63%
height on 2 mm slices loses 10.4% of its slices there."""
FILLET_REFERENCE_AGREEMENT = 0.05
"""How much larger its area behind the axis, against its area in front of it, a slice free of
pedicles may be than the median of that ratio among them, and still set the posterior outline that
bounds the others. Pedicles and rib heads as tall as a compressed body join its posterolateral
corners in slices that reach no further back than its wall, and so pass for free of them: a
biconcave T6 at 63% height with ribs, on 2 mm slices, has three such slices among eight, their
ratio 17% above the median. Their fillets are cut as those of the slices that carry pedicles. The
slices next to an endplate keep their ratio within 4% of the others' (a T12 on 2 mm slices)."""


def cut_pedicle_fillets(
    body: np.ndarray,
    hu: np.ndarray,
    bone_min_hu: float,
    slices: list[int],
    pedicle_slices: list[int],
    centre: tuple[int, int],
) -> None:
    """Cut the fillets where the pedicles join the body's side walls (in place).

    Where a pedicle meets the wall, bone fills the corner between them, and neither the opening nor
    the outer-edge trim takes it off: bone continues outward. Behind the axis, the outline that
    most pedicle-free slices share (``FILLET_SHARE``; the body's own wall, after the trim) bounds
    the slices that carry pedicles: each piece of such a slice outside it (4-connected) that
    touches bone outside the body (``hu`` at or above ``bone_min_hu``: the pedicle) is cut. Pieces
    with no bone next to them are the body's own shape and stay, as do pieces that reach the axis's
    column (the pedicles join the walls either side of the canal: a basivertebral foramen notches
    the free slices' posterior wall there); in front of the axis nothing is cut. Nothing is cut
    where the pedicle-free outline disagrees with the others in front of the axis
    (``FREE_OUTLINE_AGREEMENT``), nor in a slice whose fillets would take more than
    ``FILLET_MAX_FRACTION`` of it.
    """
    carrying = set(pedicle_slices)
    free = [z for z in slices if z not in carrying]
    if len(free) < 3 or not pedicle_slices:
        return
    reference = _fillet_free_slices(body, free, centre)
    setting_outline = set(reference)
    cut = [z for z in slices if z not in setting_outline]
    outline = body[reference].mean(axis=0) >= FILLET_SHARE
    stack = body[cut]
    front, front_of_cut_slices = _front_areas(outline, stack, centre)
    if abs(front - front_of_cut_slices) > FREE_OUTLINE_AGREEMENT * front_of_cut_slices:
        return
    outline[centre[0] :, :] = True
    pieces = slicewise.labels(stack & ~outline[None])
    if not pieces.any():
        return
    pedicle_bone = (hu[cut] >= bone_min_hu) & ~stack
    touching = np.unique(pieces[slicewise.binary_dilate(pedicle_bone, 1) & (pieces > 0)])
    # The pedicles join the side walls on either side of the spinal canal: a piece that reaches
    # the midline is the body's posterior wall, which a basivertebral foramen opens in the free
    # slices, not a fillet.
    touching = np.setdiff1d(touching, pieces[:, :, centre[1]])
    fillets = slicewise.members(pieces, touching)
    small = fillets.sum(axis=(1, 2)) <= FILLET_MAX_FRACTION * stack.sum(axis=(1, 2))
    body[cut] = stack & ~(fillets & small[:, None, None])


def _fillet_free_slices(body: np.ndarray, free: list[int], centre: tuple[int, int]) -> list[int]:
    """The slices among ``free`` (free of pedicles by their depth) whose area behind the axis pixel
    ``centre``, against their area in front of it, is within ``FILLET_REFERENCE_AGREEMENT`` of the
    median of that ratio among them: those free of fillets too. All of ``free`` when fewer than
    three are."""
    ratio = {z: body[z, : centre[0]].sum() / max(1, int(body[z, centre[0] :].sum())) for z in free}
    usual = float(np.median(list(ratio.values())))
    reference = [z for z in free if ratio[z] <= (1.0 + FILLET_REFERENCE_AGREEMENT) * usual]
    return reference if len(reference) >= 3 else free
