"""The split plane through the endplate midpoints containing the anterior axis."""

from __future__ import annotations

import numpy as np
import pytest

from CementLeakageLib.split_plane import split_plane_from_endplates
from CementLeakageLib.vertebra_frame import vertebra_frame


def test_upright_vertebra_gives_a_sagittal_plane_facing_the_puncture_side():
    upper, lower = np.array([10.0, 20.0, 40.0]), np.array([10.0, 22.0, 15.0])
    left = split_plane_from_endplates(upper, lower, "left")
    right = split_plane_from_endplates(upper, lower, "right")
    assert left.normal_ras == pytest.approx([-1.0, 0.0, 0.0], abs=1e-12)
    assert right.normal_ras == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)
    assert left.signed_distance_mm(np.array([[5.0, 0.0, 0.0]]))[0] == pytest.approx(5.0, abs=1e-12)


def test_tilted_vertebra_plane_contains_both_points_and_the_anterior_axis():
    upper, lower = np.array([5.0, 3.0, 10.0]), np.array([-5.0, 1.0, -10.0])
    plane = split_plane_from_endplates(upper, lower, "left")
    expected = np.array([-20.0, 0.0, 10.0]) / np.sqrt(500.0)  # (upper - lower) x (0, 1, 0), towards -R
    assert plane.normal_ras == pytest.approx(expected, abs=1e-12)
    on_plane = np.array([upper, lower, upper + [0.0, 37.0, 0.0]])
    assert plane.signed_distance_mm(on_plane) == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)


def test_vertebra_frame_is_orthonormal_and_right_handed():
    frame = vertebra_frame(np.array([3.0, 4.0, 30.0]), np.array([1.0, 1.0, 5.0]))
    rotation = frame.rotation
    assert rotation.T @ rotation == pytest.approx(np.eye(3), abs=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-12)
    assert frame.height_mm == pytest.approx(np.sqrt(4 + 9 + 625), abs=1e-12)
    points = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 9.0]])
    assert frame.to_ras(frame.to_frame(points)) == pytest.approx(points, abs=1e-12)
    upper, lower = frame.endplate_points_ras
    assert upper == pytest.approx([3.0, 4.0, 30.0], abs=1e-12)
    assert lower == pytest.approx([1.0, 1.0, 5.0], abs=1e-12)
