"""Thin leaks into a disc that partial volume keeps under the cement threshold.

A layer of cement thinner than a slice is averaged with the disc around it: a lens a millimetre
thick in a 2 mm slice reads about halfway between cement (2500-3000 HU) and disc (about 80 HU),
1190-1500 HU on the phantoms, and the 1500 HU threshold alone misses it. Over and under the body
(the disc rule of the leak classification, :func:`~.leakage_components.disc_locations`), connected
voxels from ``FAINT_CEMENT_MIN_HU`` up to the threshold, outside the body and clear of the cement
found (beyond the reach of its partial-volume edge), are therefore taken for cement in the disc.
Each is sized from the cement its intensity holds
(:func:`~.cement_segmentation.size_pieces_by_intensity`, against the cement's own intensity that
the cement segmentation measured), like every leak. A disc holds nothing else so bright next to
an endplate of 500-1000 HU except a calcification or a dense, sclerotic endplate: each such piece
is reported with its peak for the reader to confirm on the CT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .cement_segmentation import (
    CEMENT_EDGE_FLOOR_HU,
    CementSegmentation,
    dilate_voxels,
    intensity_reach_voxels,
    size_pieces_by_intensity,
)
from .geometry import VolumeGeometry
from .leakage_components import disc_locations
from .parameters import MeasurementParameters
from .vertebra_frame import VertebraFrame

FAINT_CEMENT_MIN_HU = CEMENT_EDGE_FLOOR_HU
"""Lowest intensity (HU) of a faint leak's voxels: above any endplate cortex of an osteoporotic
spine (500-1000 HU), about 35% of the cement's own intensity over the disc's."""
FAINT_MIN_VOXELS = 2
"""Connected voxels a faint piece needs: a single bright voxel is noise or an artefact."""


@dataclass(frozen=True)
class FaintDiscLeak:
    """One faint piece taken for cement in a disc: its location class (``disc superior`` or
    ``disc inferior``), its brightest voxel (HU) and the volume its intensity holds (mm³)."""

    location: str
    peak_hu: float
    volume_mm3: float

    def warning(self, cement_min_hu: float) -> str:
        """What the reader should check, in one sentence."""
        return (
            f"a faint spot in the {self.location.replace('disc ', '')} disc (peak {self.peak_hu:.0f} HU, "
            f"under the {cement_min_hu:.0f} HU cement threshold) is taken for a thin cement leak of "
            f"{self.volume_mm3 / 1000.0:.3f} cm3 (a layer thinner than the slice reads fainter); "
            "confirm it on the CT (a calcified disc or a sclerotic endplate looks alike)"
        )


def find_faint_disc_cement(
    array_hu: np.ndarray,
    body: np.ndarray,
    cement_found: CementSegmentation,
    geometry: VolumeGeometry,
    frame: VertebraFrame,
    parameters: MeasurementParameters,
) -> tuple[np.ndarray, list[FaintDiscLeak]]:
    """Faint cement in the discs over and under ``body``, and a description of each piece.

    ``array_hu`` (HU) and ``body`` (bool) are ``[k, j, i]`` on ``geometry``; ``cement_found`` is
    what :func:`~.cement_segmentation.segment_cement` found on the same array (its mask and the
    cement's own intensity, against which each piece is sized); ``frame`` is the vertebra's
    (:func:`~.vertebra_frame.vertebra_frame`). Returns a bool mask of the faint pieces, sized by
    intensity and apart from the cement found, and their descriptions, largest first. Without
    cement or body there is nothing to look for.
    """
    found = np.zeros(array_hu.shape, dtype=bool)
    cement = cement_found.mask
    if cement_found.reference_hu is None or not cement.any() or not body.any():
        return found, []
    reach = intensity_reach_voxels(geometry.spacing_mm)
    clear = ~dilate_voxels(cement, tuple(count + 1 for count in reach))
    candidates = (array_hu >= FAINT_CEMENT_MIN_HU) & (array_hu < parameters.cement_min_hu) & ~body & clear
    if not candidates.any():
        return found, []
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3, 3), dtype=bool))
    index = np.arange(1, count + 1)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    centres_kji = np.array(ndimage.center_of_mass(candidates, labels, index)).reshape(-1, 3)
    centres_ras = geometry.ijk_to_ras_points(centres_kji[:, ::-1])
    locations = disc_locations(centres_ras, body, geometry, frame)
    accepted = [int(n) for n in index if sizes[n] >= FAINT_MIN_VOXELS and locations[n - 1] is not None]
    if not accepted:
        return found, []
    # The cement already found is one kept piece; each faint piece is sized against it.
    pieces = cement.astype(np.int32)
    for new_label, n in enumerate(accepted, start=2):
        pieces[labels == n] = new_label
    sized = size_pieces_by_intensity(
        array_hu,
        pieces,
        {1},
        cement_found.reference_hu,
        parameters.bone_min_hu,
        reach,
        geometry.spacing_mm,
        axis_kji=geometry.direction_kji(frame.axial_ras),
    )
    voxel_mm3 = float(np.prod(geometry.spacing_mm))
    leaks = []
    for new_label, n in enumerate(accepted, start=2):
        piece = sized == new_label
        if not piece.any():
            continue
        found |= piece
        peak = float(array_hu[labels == n].max())
        leaks.append(FaintDiscLeak(str(locations[n - 1]), peak, float(piece.sum()) * voxel_mm3))
    leaks.sort(key=lambda leak: -leak.volume_mm3)
    return found, leaks
