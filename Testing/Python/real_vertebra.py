"""The real lumbar vertebra of the tests (VerSe subject 004, L2, ``Testing/Data/verse004-L2``) with
its expert labels, read as a CT.

The image is density-calibrated (mg HA/cm³) and cropped to the bone, not in HU. Stated
assumption: HU = ``HU_PER_DENSITY`` x density (a QCT calibration slope of about 0.77 mg/cm³ per
HU), the zeroed background standing for water-like soft tissue (0 HU). Its header says identity
direction but the anatomy runs the other way along y, so the j axis is flipped to anterior.
Labels: 1 and 2 the body (marrow, cortex), 3 and 4 the posterior elements, 5 and 6 the discs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from CementLeakageLib.ct_volume import CtVolume
from CementLeakageLib.geometry import VolumeGeometry
from CementLeakageLib.phantom import volume_beyond_plane_mm3
from CementLeakageLib.phantom_shapes import Ellipsoid
from CementLeakageLib.planted_cement import plant_cement
from CementLeakageLib.sitk_bridge import geometry_of

DATA = Path(__file__).resolve().parents[1] / "Data" / "verse004-L2"
HU_PER_DENSITY = 1.3
BODY_LABELS = (1, 2)
POSTERIOR_LABELS = (3, 4)
BACK_SOFT_TISSUE_MM = 10
"""Soft tissue (0 HU, mm) added behind the crop by :func:`with_the_patient_around`."""
BACK_AIR_MM = 10
"""Air (-1000 HU, mm) added behind that soft tissue: the patient's back."""
FRONT_SOFT_TISSUE_MM = 20
"""Soft tissue (0 HU, mm) added in front of the crop, which ends a few millimetres in front of the
body."""


def load_real_vertebra(hu_per_density: float | None = None) -> tuple[CtVolume, np.ndarray]:
    """The CT (HU ``[k, j, i]``, RAS geometry with j anterior) and its labels (``[k, j, i]``), the
    density read as ``hu_per_density`` (``HU_PER_DENSITY`` by default) HU per mg HA/cm³."""
    slope = HU_PER_DENSITY if hu_per_density is None else hu_per_density
    image = sitk.ReadImage(str(DATA / "verse004_L2_im.nii.gz"))
    labels = sitk.ReadImage(str(DATA / "verse004_L2_seg.nii.gz"))
    direction = np.array(image.GetDirection()).reshape(3, 3)
    direction[:, 1] *= -1.0
    image.SetDirection(direction.ravel().tolist())
    geometry = geometry_of(image)
    hu = (sitk.GetArrayFromImage(image) * slope).astype(np.float32)
    return CtVolume(hu, geometry, source="verse004 L2"), sitk.GetArrayFromImage(labels)


def endplate_midpoints(geometry: VolumeGeometry, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower endplate midpoints (RAS mm) where the body's central column ends: on the
    outer faces of its last labelled voxels, where the endplate surfaces are."""
    k, j, i = np.nonzero(body)
    ci, cj = int(round(i.mean())), int(round(j.mean()))
    column = np.flatnonzero(body[:, cj, ci])
    upper = geometry.ijk_to_ras_points([[ci, cj, column.max() + 0.5]])[0]
    lower = geometry.ijk_to_ras_points([[ci, cj, column.min() - 0.5]])[0]
    return upper, lower


def with_the_patient_around(ct: CtVolume, labels: np.ndarray) -> tuple[CtVolume, np.ndarray]:
    """The crop (j anterior) with ``BACK_SOFT_TISSUE_MM`` of soft tissue and ``BACK_AIR_MM`` of air
    added behind it and ``FRONT_SOFT_TISSUE_MM`` of soft tissue in front, as a CT of a patient
    holds, and its labels padded to match (0 there): a CT without air is refused as not being in
    HU, and a body at the image's edge as cut by the field of view."""
    spacing_j = float(ct.geometry.spacing_mm[1])
    tissue, air = round(BACK_SOFT_TISSUE_MM / spacing_j), round(BACK_AIR_MM / spacing_j)
    front = round(FRONT_SOFT_TISSUE_MM / spacing_j)
    nk, _, ni = ct.array_hu.shape
    array = np.concatenate(
        [
            np.full((nk, air, ni), -1000.0),
            np.full((nk, tissue, ni), 0.0),
            ct.array_hu,
            np.full((nk, front, ni), 0.0),
        ],
        axis=1,
    ).astype(np.float32)
    matrix = ct.geometry.ijk_to_ras.copy()
    matrix[:3, 3] = ct.geometry.ijk_to_ras_points([[0.0, -float(tissue + air), 0.0]])[0]
    padded = np.concatenate(
        [np.zeros((nk, tissue + air, ni), labels.dtype), labels, np.zeros((nk, front, ni), labels.dtype)],
        axis=1,
    )
    return replace(ct, array_hu=array, geometry=VolumeGeometry(matrix, array.shape)), padded


BOLUS_SEMI_AXES_MM = (7.0, 8.0, 6.0)
"""R, A, S semi-axes (mm) of the planted bolus: 1.407 cm³, inside the labelled body wherever it is
placed up to 5 mm off its centroid side to side."""
LEAK_SOLIDS_MM = {
    "paravertebral": ((3.0, 3.0, 3.0), 3.0),
    "spinal canal": ((3.0, 2.0, 5.0), 2.0),
    "anterior": ((5.0, 2.5, 5.0), 2.0),
    "disc superior": ((6.0, 5.0, 1.0), 2.0),
}
"""Semi-axes (R, A, S, mm) of each plantable leak and its gap (mm) from the labelled body's wall:
beside the side wall on the puncture side, behind the posterior wall and in front of the anterior
one on the midline, above the upper endplate; at the body's mid-height but for the disc's."""


@dataclass(frozen=True)
class PlantedVertebra:
    """The real L2 with planted cement (:func:`real_vertebra_with_cement`)."""

    ct: CtVolume
    labels: np.ndarray
    upper_ras: np.ndarray
    lower_ras: np.ndarray
    side: str
    bolus: Ellipsoid
    leaks: dict[str, Ellipsoid]
    bcv_cm3: float
    """The bolus's analytic volume (cm³), all of it inside the labelled body."""
    psbcv_cm3: float
    """Its analytic volume on the puncture side of the split plane through the endplate midpoints
    that holds the anterior axis (cm³)."""


def _wall_ras(
    geometry: VolumeGeometry, body: np.ndarray, centre_kji: np.ndarray, axis: int, end: int
) -> float:
    """RAS coordinate ``axis`` (0 R, 1 A, 2 S) of the outer face of the labelled ``body``'s last voxel
    (``end`` +1 towards +axis, -1 the other way) on the grid line through ``centre_kji`` along the
    array axis that runs along it (the crop is axis-aligned)."""
    array_axis = 2 - axis
    line = [int(round(c)) for c in centre_kji]
    line[array_axis] = slice(None)
    voxels = np.flatnonzero(body[tuple(line)])
    points = np.zeros((len(voxels), 3))
    points[:] = centre_kji[::-1]
    points[:, axis] = voxels
    coordinates = geometry.ijk_to_ras_points(points)[:, axis]
    half = 0.5 * abs(float(geometry.ijk_to_ras[axis, axis]))
    return float(coordinates.max() + half) if end > 0 else float(coordinates.min() - half)


def real_vertebra_with_cement(
    side: str = "left",
    bolus_offset_mm: float = 5.0,
    leaks: tuple[str, ...] = ("paravertebral",),
    hu_per_density: float | None = None,
    seed: int = 0,
    bolus: bool = True,
) -> PlantedVertebra:
    """The real L2 (:func:`load_real_vertebra`, in a patient: :func:`with_the_patient_around`) with a
    cement bolus (``BOLUS_SEMI_AXES_MM``) ``bolus_offset_mm`` (mm) from the labelled body's
    centroid towards the puncture ``side`` and the ``leaks`` of ``LEAK_SOLIDS_MM``; without ``bolus``
    the leaks only (the truth still describes the bolus)."""
    ct, labels = load_real_vertebra(hu_per_density)
    ct, labels = with_the_patient_around(ct, labels)
    geometry = ct.geometry
    body = np.isin(labels, BODY_LABELS)
    upper, lower = endplate_midpoints(geometry, body)
    centre_kji = np.argwhere(body).mean(axis=0)
    centroid = geometry.ijk_to_ras_points([centre_kji[::-1]])[0]
    towards = -1.0 if side == "left" else 1.0
    bolus_solid = Ellipsoid(tuple(centroid + [towards * bolus_offset_mm, 0.0, 0.0]), BOLUS_SEMI_AXES_MM)
    solids = {}
    for location in leaks:
        semi, gap = LEAK_SOLIDS_MM[location]
        centre = centroid.copy()
        if location == "paravertebral":
            end = int(towards)
            centre[0] = _wall_ras(geometry, body, centre_kji, 0, end) + towards * (gap + semi[0])
        elif location == "spinal canal":
            centre[1] = _wall_ras(geometry, body, centre_kji, 1, -1) - (gap + semi[1])
        elif location == "anterior":
            centre[1] = _wall_ras(geometry, body, centre_kji, 1, +1) + gap + semi[1]
        else:
            centre = upper + [0.0, 0.0, gap + semi[2]]
        solids[location] = Ellipsoid(tuple(centre), semi)
    planted = plant_cement(ct, [bolus_solid] * bolus + list(solids.values()), seed=seed)
    normal = np.cross(upper - lower, [0.0, 1.0, 0.0])
    normal *= towards * np.sign(normal[0]) / np.linalg.norm(normal)
    psbcv_mm3 = volume_beyond_plane_mm3(bolus_solid, 0.5 * (upper + lower), normal)
    return PlantedVertebra(
        planted,
        labels,
        upper,
        lower,
        side,
        bolus_solid,
        solids,
        bolus_solid.volume_mm3 / 1000.0,
        psbcv_mm3 / 1000.0,
    )
