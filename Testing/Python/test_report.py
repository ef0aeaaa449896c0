"""The clinician's report: the level figure (slices, 3D view) and the self-contained HTML page."""

from __future__ import annotations

import html
import struct

import numpy as np
import pytest
from matplotlib.image import imread

from CementLeakageLib.errors import CementLeakageError
from CementLeakageLib.phantom import PhantomSpec, make_phantom
from CementLeakageLib.pipeline import measure_vertebra
from CementLeakageLib.report_figures import (
    LABEL_EXTRAVERTEBRAL,
    LABEL_OTHER_CEMENT,
    LABEL_PUNCTURE_CEMENT,
    OUTSIDE_HU,
    VIEWS,
    label_volume,
    panel_box_ras,
    render_3d,
    slice_centre_ras,
    slice_through,
    write_level_figure,
)
from CementLeakageLib.report_html import blur_text, flag_banner, write_report_html
from CementLeakageLib.risk_rules import default_rule_name, evaluate_rule, get_rule
from CementLeakageLib.split_plane import split_plane_from_endplates

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def measured(**spec):
    phantom = make_phantom(PhantomSpec(spacing_mm=(1.0, 1.0, 1.0), **spec))
    truth = phantom.truth
    result = measure_vertebra(phantom.ct, truth.upper_ras, truth.lower_ras, truth.side, level=truth.level)
    return phantom, result


@pytest.fixture(scope="module")
def axial_left():
    return measured()


@pytest.fixture(scope="module")
def oblique_right():
    return measured(orientation="oblique", side="right")


@pytest.fixture(scope="module")
def axial_low():
    return measured(level="L2", cement_preset="low")


def png_size(path) -> tuple[int, int]:
    """Width and height (px) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("case", ["axial_left", "oblique_right"])
def test_level_figure_is_a_png_of_about_1600_by_1200_pixels(case, request, tmp_path):
    phantom, result = request.getfixturevalue(case)
    path = write_level_figure(tmp_path / "L1.png", phantom.ct, result, title="L1 <left>")
    assert path == tmp_path / "L1.png"
    width, height = png_size(path)
    assert 1500 <= width <= 1700 and 1100 <= height <= 1300
    assert [p.name for p in tmp_path.iterdir()] == ["L1.png"]  # no temporary file left behind
    pixels = (imread(path)[..., :3] * 255).astype(int)
    rendering = pixels[int(0.6 * height) : int(0.85 * height), int(0.6 * width) : int(0.9 * width)]
    assert rendering.std() > 10.0  # the 3D panel is drawn, not blank
    r, g, b = rendering[..., 0], rendering[..., 1], rendering[..., 2]
    assert np.sum((r > 150) & (b > 150) & (g < 110)) > 100


@pytest.mark.parametrize("case", ["axial_left", "oblique_right"])
def test_sampled_slices_equal_the_nearest_voxel_found_by_brute_force(case, request):
    phantom, result = request.getfixturevalue(case)
    ct = phantom.ct
    labels = label_volume(result)
    centre = slice_centre_ras(result)
    low, high = panel_box_ras(result)
    k, j, i = np.indices(ct.geometry.shape).reshape(3, -1)
    centres = ct.geometry.voxel_centers_ras((k, j, i))
    rng = np.random.default_rng(7)
    for view in VIEWS:
        sample = slice_through(ct, labels, view, centre, low, high)
        assert sample.points_ras[..., {"axial": 2, "coronal": 1, "sagittal": 0}[view]] == pytest.approx(
            centre[{"axial": 2, "coronal": 1, "sagittal": 0}[view]]
        )
        cement_pixels = np.argwhere(sample.labels >= LABEL_OTHER_CEMENT)
        picks = list(cement_pixels[rng.choice(len(cement_pixels), 3, replace=False)])
        picks += [rng.integers(0, sample.labels.shape) for _ in range(3)]
        for row, column in picks:
            point = sample.points_ras[row, column]
            nearest = int(np.argmin(np.sum((centres - point) ** 2, axis=1)))
            distance = np.sqrt(np.sum((centres[nearest] - point) ** 2))
            if distance > 0.87:  # sqrt(3)/2 voxel of 1 mm: the point lies outside the grid
                assert sample.hu[row, column] == OUTSIDE_HU
                continue
            assert sample.labels[row, column] == labels[k[nearest], j[nearest], i[nearest]]
            assert sample.hu[row, column] == pytest.approx(ct.array_hu[k[nearest], j[nearest], i[nearest]])


@pytest.mark.parametrize("case, r_sign", [("axial_left", -1.0), ("oblique_right", 1.0)])
def test_puncture_side_cement_lies_on_the_puncture_side_of_the_plane_in_the_axial_slice(
    case, r_sign, request
):
    phantom, result = request.getfixturevalue(case)
    labels = label_volume(result)
    low, high = panel_box_ras(result)
    sample = slice_through(phantom.ct, labels, "axial", slice_centre_ras(result), low, high)
    m = result.measurement
    plane = split_plane_from_endplates(m.upper_ras, m.lower_ras, m.side)
    assert np.sign(plane.normal_ras[0]) == r_sign
    magenta = sample.labels == LABEL_PUNCTURE_CEMENT
    blue = sample.labels == LABEL_OTHER_CEMENT
    assert magenta.sum() > 200 and blue.sum() > 200
    distance = plane.signed_distance_mm(sample.points_ras.reshape(-1, 3)).reshape(magenta.shape)
    half_voxel_diagonal = np.sqrt(3.0) / 2.0  # nearest-neighbour pixels may sit this far off their voxel
    assert distance[magenta].min() > -half_voxel_diagonal
    assert distance[blue].max() < half_voxel_diagonal
    # Radiological display: patient left (-R) is on the image right.
    columns = np.nonzero(magenta)[1]
    other_columns = np.nonzero(blue)[1]
    if r_sign < 0:
        assert np.median(columns) > np.median(other_columns)
    else:
        assert np.median(columns) < np.median(other_columns)
    r_values = sample.points_ras[..., 0][magenta]
    assert np.all(r_sign * (r_values - plane.point_ras[0]) > -half_voxel_diagonal - 1.0)


def test_extravertebral_cement_of_the_axial_phantom_is_labelled_outside_the_body(axial_left):
    _, result = axial_left
    labels = label_volume(result)
    assert np.array_equal(labels == LABEL_EXTRAVERTEBRAL, result.extravertebral_cement_mask)
    assert not np.any(result.body_mask[labels == LABEL_EXTRAVERTEBRAL])


@pytest.mark.parametrize("case", ["axial_left", "oblique_right"])
def test_3d_rendering_shows_magenta_puncture_side_cement(case, request):
    _, result = request.getfixturevalue(case)
    image = render_3d(result, size_px=(400, 300))
    assert image.shape == (300, 400, 3) and image.dtype == np.uint8
    assert image.std() > 10.0
    r, g, b = (image[..., c].astype(int) for c in range(3))
    magenta = (r > 150) & (b > 150) & (g < 110)
    assert magenta.sum() > 100


def document_for(results, names) -> dict:
    rule = get_rule(default_rule_name())
    levels = []
    for (_, result), name in zip(results, names):
        record = result.measurement.as_dict()
        record["level"] = name
        record["segments"] = {
            "body": {"name": f"{name} body", "edited_by_hand": False, "mask_sha256": "a" * 64},
            "cement": {"name": f"{name} cement", "edited_by_hand": True, "mask_sha256": "b" * 64},
        }
        record["risk_rules"] = [evaluate_rule(rule, record)]
        levels.append(record)
    return {
        "software_version": "0.1.0",
        "exported_utc": "2026-11-25T09:30:00Z",
        "input": {"source": "phantom <test>", "sha256": "c" * 64},
        "levels": levels,
    }


def test_html_report_is_self_contained_escaped_and_flags_each_level(axial_left, axial_low, tmp_path):
    figure = write_level_figure(tmp_path / "L1.png", axial_left[0].ct, axial_left[1], title="<L1>")
    document = document_for([axial_left, axial_low], ["<L1>", "L2"])
    flagged, unflagged = document["levels"]
    assert flagged["exceeds_cutoff"] and not unflagged["exceeds_cutoff"]
    path = write_report_html(tmp_path / "report.html", document, {"<L1>": figure})
    page = path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["L1.png", "report.html"]

    assert page.count("data:image/png;base64,") == 1
    assert 'src="http' not in page and "href=" not in page and "<script" not in page.lower()
    assert "<L1>" not in page and "&lt;L1&gt;" in page
    assert "phantom &lt;test&gt;" in page
    for record in (flagged, unflagged):
        for key in ("vbv_cm3", "bcv_cm3", "psbcv_cm3", "bcv_vbv_pct", "psbcv_vbv_pct"):
            assert f">{record[key]:.2f}<" in page
    assert "84.7" in page and "37.8" in page and "0.690" in page
    meaning = flagged["risk_rules"][0]["predictive_values"]["meaning"]
    assert html.escape(meaning) in page
    assert "a" * 64 in page and "b" * 64 in page
    for record in (flagged, unflagged):
        assert 0.3 <= record["ct_blur_sigma_mm"] <= 1.2
        assert f"<code>{record['ct_blur_sigma_mm']:.2f} (measured on the cement&#x27;s edges)</code>" in page

    sections = page.split("<section>")[1:3]
    assert "&lt;L1&gt;" in sections[0] and "L2" in sections[1]
    assert "Above the 13.68% cut-off" in sections[0] and "Not above" not in sections[0]
    assert "Not above the 13.68% cut-off" in sections[1] and "Above the" not in sections[1]
    assert "data:image/png;base64," in sections[0] and "data:image/png;base64," not in sections[1]


def test_html_report_needs_levels_and_existing_figures(axial_left, tmp_path):
    with pytest.raises(CementLeakageError, match="no levels"):
        write_report_html(tmp_path / "r.html", {"levels": []}, {})
    document = document_for([axial_left], ["L1"])
    with pytest.raises(CementLeakageError, match="does not exist"):
        write_report_html(tmp_path / "r.html", document, {"L1": tmp_path / "missing.png"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exceeds", [True, False])
def test_flag_banner_says_when_the_ratio_is_near_the_cutoff(exceeds):
    record = {"cutoff_pct": 13.68, "psbcv_vbv_pct": 13.9 if exceeds else 13.5, "exceeds_cutoff": exceeds}
    assert "near the cut-off" not in flag_banner(record)
    banner = flag_banner({**record, "near_cutoff": True})
    assert "near the cut-off: the flag may fall either way" in banner
    assert ("Above the 13.68% cut-off" in banner) is exceeds
    assert f"PSBCV/VBV {record['psbcv_vbv_pct']:.2f}%" in banner


def test_blur_line_says_what_stood_in_for_an_unmeasured_blur():
    assert blur_text({"ct_blur_sigma_mm": 0.5549}) == "0.55 (measured on the cement's edges)"
    assert blur_text({"ct_blur_sigma_mm": None, "segmentation_source": "automatic"}) == (
        "not measured; 0.60 assumed"
    )
    given = blur_text({"ct_blur_sigma_mm": None, "segmentation_source": "given"})
    assert given == "not measured (masks given)"
