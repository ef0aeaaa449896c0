"""Body segmentation on a real lumbar vertebra (VerSe subject 004, L2) with expert labels.

The image is density-calibrated (mg HA/cm³) and cropped to the bone, not in HU. Stated
assumption: HU = 1.3 x density (a QCT calibration slope of about 0.77 mg/cm³ per HU), with the
zeroed background standing for water-like soft tissue (0 HU). Its header says identity
direction but the anatomy runs the other way along y, so the j axis is flipped to anterior.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CementLeakageLib.body_segmentation import segment_vertebral_body
from CementLeakageLib.ct_volume import CtVolume
from CementLeakageLib.sitk_bridge import geometry_of

DATA = Path(__file__).resolve().parents[1] / "Data" / "verse004-L2"
HU_PER_DENSITY = 1.3


def load_real_vertebra():
    image = sitk.ReadImage(str(DATA / "verse004_L2_im.nii.gz"))
    labels = sitk.ReadImage(str(DATA / "verse004_L2_seg.nii.gz"))
    direction = np.array(image.GetDirection()).reshape(3, 3)
    direction[:, 1] *= -1.0
    image.SetDirection(direction.ravel().tolist())
    geometry = geometry_of(image)
    hu = (sitk.GetArrayFromImage(image) * HU_PER_DENSITY).astype(np.float32)
    return CtVolume(hu, geometry, source="verse004 L2"), sitk.GetArrayFromImage(labels)


def endplate_midpoints(geometry, body):
    """Upper and lower endplate midpoints (RAS mm) where the body's central column ends: on the
    outer faces of its last labelled voxels, where the endplate surfaces are."""
    k, j, i = np.nonzero(body)
    ci, cj = int(round(i.mean())), int(round(j.mean()))
    column = np.flatnonzero(body[:, cj, ci])
    upper = geometry.ijk_to_ras_points([[ci, cj, column.max() + 0.5]])[0]
    lower = geometry.ijk_to_ras_points([[ci, cj, column.min() - 0.5]])[0]
    return upper, lower


def test_real_vertebral_body_matches_expert_labels():
    ct, labels = load_real_vertebra()
    truth = np.isin(labels, [1, 2])
    posterior_elements = np.isin(labels, [3, 4])
    upper, lower = endplate_midpoints(ct.geometry, truth)
    assert upper[1] > lower[1] - 5 and upper[2] > lower[2]  # anatomy reads as RAS after the flip

    result = segment_vertebral_body(ct, upper, lower)
    mask = np.zeros(truth.shape, dtype=bool)
    mask[result.box] = result.mask
    dice = 2.0 * np.count_nonzero(mask & truth) / (np.count_nonzero(mask) + np.count_nonzero(truth))
    # Measured 0.915 (0.897 while a rim had to leave the outline's core, eroded by 3 mm, free:
    # these shallow dishes' rims cover 9-22% of it). The rest of the loss is the part of the
    # rims under 226 HU and the labels' outermost layer of voxels.
    assert dice >= 0.90
    # The pedicles and the posterior arch are cut off: under 1% of the mask lies in them.
    assert np.count_nonzero(mask & posterior_elements) <= 0.01 * np.count_nonzero(mask)
    volume_ratio = np.count_nonzero(mask) / np.count_nonzero(truth)
    assert volume_ratio == pytest.approx(0.850, abs=0.03)  # measured 0.850 (0.821 before)
    # The rims beyond the marked points: 1004 voxels of the labels' 2662 there, 2 outside them.
    lower_k, upper_k = ct.geometry.ras_to_ijk_points(np.array([lower, upper]))[:, 2]
    beyond = np.zeros(truth.shape, dtype=bool)
    beyond[: int(round(lower_k + 0.5))] = True  # the points lie on the faces between slices
    beyond[int(round(upper_k + 0.5)) :] = True
    assert np.count_nonzero(beyond & truth) == 2662
    assert np.count_nonzero(mask & beyond & truth) >= 900
    assert np.count_nonzero(mask & beyond & ~truth) <= 20
