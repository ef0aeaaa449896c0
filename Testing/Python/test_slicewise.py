"""Slice-wise operations on [z, y, x] volumes give, slice by slice, exactly what the 2D
SimpleITK operations give on each slice alone."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from CementLeakageLib import slicewise

SHAPE = (6, 47, 53)


def random_mask(seed: int, fraction: float = 0.5, blur_px: float = 1.5) -> np.ndarray:
    """Blobs with holes, touching the edges, differing from slice to slice."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.random(SHAPE), (0.0, blur_px, blur_px))
    return noise > np.quantile(noise, 1.0 - fraction)


def per_slice(operation, volume: np.ndarray) -> np.ndarray:
    """``operation`` (SimpleITK image to image) applied to every slice on its own."""
    return np.stack([sitk.GetArrayFromImage(operation(sitk.GetImageFromArray(plane))) for plane in volume])


def same_partition(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two 2D label images have the same background and the same components."""
    if not np.array_equal(first > 0, second > 0):
        return False
    pairs = np.unique(np.stack([first[first > 0], second[second > 0]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fraction", [0.4, 0.6, 0.8])
def test_labels_match_connected_component_per_slice(seed, fraction):
    mask = random_mask(seed, fraction)
    expected = per_slice(sitk.ConnectedComponent, mask.astype(np.uint8))
    labelled = slicewise.labels(mask)
    for z in range(SHAPE[0]):
        assert same_partition(labelled[z], expected[z])
    assert labelled.max() == sum(int(plane.max()) for plane in expected)
    for z in range(SHAPE[0] - 1):
        assert not set(np.unique(labelled[z])) & set(np.unique(labelled[z + 1])) - {0}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fraction", [0.4, 0.6, 0.8])
def test_fill_holes_matches_binary_fillhole_per_slice(seed, fraction):
    mask = random_mask(seed, fraction)

    def fill(image):
        return sitk.BinaryFillhole(image, fullyConnected=False, foregroundValue=1)

    expected = per_slice(fill, mask.astype(np.uint8)) > 0
    filled = slicewise.fill_holes(mask)
    assert np.array_equal(filled, expected)
    assert filled.sum() > mask.sum()


def test_fill_holes_keeps_a_ring_open_to_the_edge_and_fills_a_closed_one():
    mask = np.zeros((2, 9, 9), dtype=bool)
    mask[:, 2:7, 2:7] = True
    mask[:, 3:6, 3:6] = False
    mask[1, 4, 2] = False  # the ring of slice 1 is open to the outside
    filled = slicewise.fill_holes(mask)
    assert filled[0, 3:6, 3:6].all()
    assert not filled[1, 3:6, 3:6].any()


@pytest.mark.parametrize("radius_px", range(1, 10))
def test_disk_is_simpleitk_ball_without_extent_in_z(radius_px):
    point = np.zeros((1, 21, 21), dtype=np.uint8)
    point[0, 10, 10] = 1
    ball = sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.GetImageFromArray(point), [radius_px] * 2 + [0]))
    widths = slicewise.disk_half_widths(radius_px)
    rows = np.arange(21)[:, None] - 10
    cols = np.arange(21)[None, :] - 10
    disk = (np.abs(rows) <= radius_px) & (np.abs(cols) <= widths[np.clip(rows + radius_px, 0, 2 * radius_px)])
    assert np.array_equal(ball[0] > 0, disk)
    assert widths[radius_px] == radius_px and widths[0] == widths[-1]


@pytest.mark.parametrize("radius_px", [1, 2, 3, 4, 6, 9])
@pytest.mark.parametrize("fraction", [0.15, 0.5, 0.85])
def test_binary_morphology_matches_disks_per_slice(radius_px, fraction):
    mask = random_mask(7, fraction)
    image = mask.astype(np.uint8)
    disk = [radius_px, radius_px]
    closed = per_slice(lambda i: sitk.BinaryMorphologicalClosing(i, disk), image) > 0
    eroded = per_slice(lambda i: sitk.BinaryErode(i, disk), image) > 0
    dilated = per_slice(lambda i: sitk.BinaryDilate(i, disk), image) > 0
    assert np.array_equal(slicewise.binary_closing(mask, radius_px), closed)
    assert np.array_equal(slicewise.binary_erode(mask, radius_px), eroded)
    assert np.array_equal(slicewise.binary_dilate(mask, radius_px), dilated)
    assert eroded.sum() < mask.sum() < dilated.sum()
    assert mask.sum() < closed.sum()


def test_morphology_at_the_slice_edge():
    """Erosion treats the outside as foreground, closing neither closes nor opens along the edge."""
    mask = np.zeros((2, 12, 12), dtype=bool)
    mask[0] = True
    mask[1, :, :2] = True
    mask[1, :, 4:6] = True
    assert slicewise.binary_erode(mask, 2)[0].all()
    assert np.array_equal(slicewise.binary_erode(mask, 2)[1], np.zeros((12, 12), dtype=bool))
    closed = slicewise.binary_closing(mask, 2)
    assert closed[0].all()
    assert closed[1, :, :6].all() and not closed[1, :, 6:].any()


@pytest.mark.parametrize("radius_px", [1, 3, 8])
def test_grayscale_dilate_matches_per_slice(radius_px):
    values = (np.random.default_rng(3).normal(size=SHAPE) * 300.0).astype(np.float32)
    expected = per_slice(lambda i: sitk.GrayscaleDilate(i, [radius_px, radius_px]), values)
    dilated = slicewise.grayscale_dilate(values, radius_px)
    assert dilated.dtype == np.float32
    assert np.array_equal(dilated, expected)
    assert (dilated >= values).all()


@pytest.mark.parametrize("sigma_px", [1.0, 2.0])
def test_gaussian_smoothing_matches_smoothing_recursive_gaussian_per_slice(sigma_px):
    values = (np.random.default_rng(5).normal(size=SHAPE) * 300.0).astype(np.float32)
    values[2] = random_mask(2)[2]
    expected = per_slice(lambda i: sitk.SmoothingRecursiveGaussian(i, sigma_px), values)
    smoothed = slicewise.gaussian_smoothing(values, sigma_px)
    assert smoothed.dtype == np.float32
    assert np.array_equal(smoothed, expected)
    assert smoothed.std() < values.std()


def test_gradient_matches_numpy_per_slice():
    values = np.random.default_rng(1).normal(size=SHAPE)
    along_rows, along_cols = slicewise.gradient(values)
    for z in range(SHAPE[0]):
        expected_rows, expected_cols = np.gradient(values[z])
        assert np.array_equal(along_rows[z], expected_rows)
        assert np.array_equal(along_cols[z], expected_cols)


def test_nearest_labels_and_component_near():
    mask = np.zeros((3, 11, 11), dtype=bool)
    mask[0, 4:7, 4:7] = True  # covers the point
    mask[0, 0:2, 0:2] = True
    mask[1, 5, 8:10] = True  # 3 pixels right of the point
    mask[1, 0, 5] = True  # 5 pixels above it
    point = (5, 5)
    labelled = slicewise.labels(mask)
    chosen, distance = slicewise.nearest_labels(labelled, point)
    assert chosen[0] == labelled[0, 5, 5] and distance[0] == 0.0
    assert chosen[1] == labelled[1, 5, 8] and distance[1] == 3.0
    assert chosen[2] == 0 and np.isinf(distance[2])
    near = slicewise.component_near(mask, point)
    assert np.array_equal(near[0], mask[0] & (np.arange(11)[:, None] >= 4))
    assert np.array_equal(near[1], mask[1] & (np.arange(11)[:, None] == 5))
    assert not near[2].any()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("point", [(23, 26), (0, 0), (46, 10), (-4, 60)])
def test_component_near_matches_per_slice_connected_component(seed, point):
    mask = random_mask(seed, 0.3)
    mask[1] = False
    near = slicewise.component_near(mask, point)
    for z, plane in enumerate(mask):
        if not plane.any():
            assert not near[z].any()
            continue
        labelled = sitk.GetArrayFromImage(
            sitk.ConnectedComponent(sitk.GetImageFromArray(plane.astype(np.uint8)))
        )
        rows, cols = np.nonzero(labelled)
        nearest = np.argmin(np.hypot(rows - point[0], cols - point[1]))
        expected = labelled == labelled[rows[nearest], cols[nearest]]
        assert np.array_equal(near[z], expected)
