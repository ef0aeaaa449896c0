"""The clinician's figure of one treated vertebra: three RAS-aligned slices and a 3D view.

Slices are sampled on planes aligned with the patient RAS axes (nearest neighbour, about
0.5 mm pixels over the body's extent plus a margin), so oblique or flipped volumes display
upright. Display follows the radiological convention: axial and coronal show patient left on
the image right, the axial view has anterior at the top, the sagittal view anterior on the
left. The CT is shown in a bone window; the body is outlined, puncture-side cement is
magenta, the other cement inside the body light blue and extravertebral cement red; the
split plane's intersection is dashed. The 3D panel is an off-screen VTK rendering of the
masks placed in RAS.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .ct_volume import CtVolume
from .errors import CementLeakageError
from .geometry import VolumeGeometry
from .pipeline import VertebraResult
from .split_plane import SplitPlane, split_plane_from_endplates

BONE_WINDOW_HU = (2000.0, 500.0)
"""Display window (width, level) in HU."""
PIXEL_MM = 0.5
"""Pixel size (mm) of the sampled slice planes."""
MARGIN_MM = 10.0
"""Margin (mm) around the body's extent in the slice panels."""
SCALE_BAR_MM = 10.0
FIGURE_SIZE_PX = (1600, 1200)
FIGURE_DPI = 100
RENDER_SIZE_PX = (800, 600)
OUTSIDE_HU = -1024.0
"""Value shown where a slice plane leaves the CT grid (HU)."""

LABEL_NONE, LABEL_BODY, LABEL_OTHER_CEMENT, LABEL_PUNCTURE_CEMENT, LABEL_EXTRAVERTEBRAL = 0, 1, 2, 3, 4
"""Labels of :func:`label_volume`: body without cement, other cement in the body,
puncture-side cement, extravertebral cement."""

BODY_COLOUR = (0.96, 0.87, 0.70)
PUNCTURE_CEMENT_COLOUR = (1.0, 0.0, 1.0)
OTHER_CEMENT_COLOUR = (0.55, 0.80, 1.0)
OTHER_CEMENT_3D_COLOUR = (0.25, 0.45, 1.0)
EXTRAVERTEBRAL_COLOUR = (1.0, 0.0, 0.0)
PLANE_COLOUR = (1.0, 0.85, 0.1)
CEMENT_ALPHA = 0.6

VIEWS = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class ViewAxes:
    """How a view maps RAS to the image: RAS axis index and direction of columns and rows.

    ``column_sign`` -1 means RAS values decrease from the image left to right; ``normal_axis``
    is the RAS axis the slice is perpendicular to. Letters name the image edges.
    """

    column_axis: int
    column_sign: float
    row_axis: int
    row_sign: float
    normal_axis: int
    letters: tuple[str, str, str, str]  # left, right, top, bottom


VIEW_AXES = {
    # Patient right on the image left, anterior at the top (seen from the feet).
    "axial": ViewAxes(0, -1.0, 1, -1.0, 2, ("R", "L", "A", "P")),
    # Patient right on the image left, superior at the top (seen from the front).
    "coronal": ViewAxes(0, -1.0, 2, -1.0, 1, ("R", "L", "S", "I")),
    # Anterior on the image left, superior at the top.
    "sagittal": ViewAxes(1, -1.0, 2, -1.0, 0, ("A", "P", "S", "I")),
}


@dataclass
class PlaneSample:
    """One slice sampled on an RAS-aligned plane.

    ``hu`` (HU) and ``labels`` (see :func:`label_volume`) are ``(rows, columns)``;
    ``points_ras`` ``(rows, columns, 3)`` holds each pixel's RAS position (mm). ``pixel_mm`` is
    the pixel size; the image spans ``columns * pixel_mm`` by ``rows * pixel_mm`` mm.
    """

    view: str
    hu: np.ndarray
    labels: np.ndarray
    points_ras: np.ndarray
    pixel_mm: float

    @property
    def extent_mm(self) -> tuple[float, float, float, float]:
        """``imshow`` extent (left, right, bottom, top) in mm from the image's top-left corner."""
        rows, columns = self.labels.shape
        return (0.0, columns * self.pixel_mm, rows * self.pixel_mm, 0.0)


def label_volume(result: VertebraResult) -> np.ndarray:
    """Labels ``[k, j, i]`` (uint8) of a result's masks, see ``LABEL_*``."""
    labels = np.zeros(result.body_mask.shape, dtype=np.uint8)
    labels[result.body_mask] = LABEL_BODY
    labels[result.cement_mask & result.body_mask] = LABEL_OTHER_CEMENT
    labels[result.puncture_side_cement_mask] = LABEL_PUNCTURE_CEMENT
    labels[result.extravertebral_cement_mask] = LABEL_EXTRAVERTEBRAL
    return labels


def mask_centroid_ras(mask: np.ndarray, geometry: VolumeGeometry) -> Optional[np.ndarray]:
    """Mean RAS position (mm) of a mask's voxel centres, or None for an empty mask."""
    indices = np.nonzero(mask)
    if indices[0].size == 0:
        return None
    return geometry.voxel_centers_ras(indices).mean(axis=0)


def mask_bounds_ras(mask: np.ndarray, geometry: VolumeGeometry) -> tuple[np.ndarray, np.ndarray]:
    """RAS bounding box (mm, low and high corners) of a mask's voxel centres."""
    points = geometry.voxel_centers_ras(np.nonzero(mask))
    return points.min(axis=0), points.max(axis=0)


def slice_centre_ras(result: VertebraResult) -> np.ndarray:
    """Where the slices cross (RAS mm): the centroid of the cement in the body, else of the body."""
    if not np.any(result.body_mask):
        raise CementLeakageError("the vertebral body mask is empty: segment the body before making a report")
    centre = mask_centroid_ras(result.cement_mask & result.body_mask, result.geometry)
    if centre is None:
        centre = mask_centroid_ras(result.body_mask, result.geometry)
    return centre


def plane_grid_ras(
    view: str, centre_ras: np.ndarray, low_ras: np.ndarray, high_ras: np.ndarray, pixel_mm: float = PIXEL_MM
) -> np.ndarray:
    """Pixel centres ``(rows, columns, 3)`` (RAS mm) of a ``view`` plane through ``centre_ras``.

    The plane covers the box ``low_ras``..``high_ras`` (mm) in its two in-plane axes, with
    columns and rows running as :data:`VIEW_AXES` says.
    """
    axes = VIEW_AXES[view]

    def axis_values(axis: int, sign: float) -> np.ndarray:
        count = max(1, int(np.ceil((high_ras[axis] - low_ras[axis]) / pixel_mm)))
        start = high_ras[axis] if sign < 0 else low_ras[axis]
        return start + sign * pixel_mm * (np.arange(count) + 0.5)

    columns = axis_values(axes.column_axis, axes.column_sign)
    rows = axis_values(axes.row_axis, axes.row_sign)
    grid = np.empty((rows.size, columns.size, 3))
    grid[..., axes.normal_axis] = centre_ras[axes.normal_axis]
    grid[..., axes.column_axis] = columns[np.newaxis, :]
    grid[..., axes.row_axis] = rows[:, np.newaxis]
    return grid


def sample_nearest(
    array: np.ndarray, geometry: VolumeGeometry, points_ras: np.ndarray, outside: float
) -> np.ndarray:
    """Nearest-neighbour values of ``array`` ``[k, j, i]`` at RAS points ``(..., 3)`` (mm).

    Points outside the grid get ``outside``.
    """
    shape = points_ras.shape[:-1]
    ijk = np.rint(geometry.ras_to_ijk_points(points_ras.reshape(-1, 3))).astype(np.int64)
    size = np.array(geometry.shape[::-1])
    inside = np.all((ijk >= 0) & (ijk < size), axis=1)
    values = np.full(ijk.shape[0], outside, dtype=np.result_type(array.dtype, np.asarray(outside).dtype))
    i, j, k = ijk[inside].T
    values[inside] = array[k, j, i]
    return values.reshape(shape)


def slice_through(
    ct: CtVolume,
    labels: np.ndarray,
    view: str,
    centre_ras: np.ndarray,
    low_ras: np.ndarray,
    high_ras: np.ndarray,
    pixel_mm: float = PIXEL_MM,
) -> PlaneSample:
    """The CT (HU) and ``labels`` ``[k, j, i]`` on a ``view`` plane through ``centre_ras`` (RAS mm).

    The plane spans ``low_ras``..``high_ras`` (mm) in-plane; sampling is nearest neighbour.
    """
    if view not in VIEW_AXES:
        raise CementLeakageError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
    grid = plane_grid_ras(view, np.asarray(centre_ras, float), low_ras, high_ras, pixel_mm)
    hu = sample_nearest(ct.array_hu, ct.geometry, grid, OUTSIDE_HU).astype(float)
    sampled = sample_nearest(labels, ct.geometry, grid, LABEL_NONE).astype(np.uint8)
    return PlaneSample(view=view, hu=hu, labels=sampled, points_ras=grid, pixel_mm=pixel_mm)


def panel_box_ras(result: VertebraResult, margin_mm: float = MARGIN_MM) -> tuple[np.ndarray, np.ndarray]:
    """The RAS box (mm) the slice panels show: the body's extent plus ``margin_mm``."""
    low, high = mask_bounds_ras(result.body_mask, result.geometry)
    return low - margin_mm, high + margin_mm


def overlay_rgba(labels: np.ndarray) -> np.ndarray:
    """An RGBA image ``(rows, columns, 4)`` colouring the cement labels, transparent elsewhere."""
    rgba = np.zeros(labels.shape + (4,))
    for label, colour, alpha in (
        (LABEL_OTHER_CEMENT, OTHER_CEMENT_COLOUR, CEMENT_ALPHA),
        (LABEL_PUNCTURE_CEMENT, PUNCTURE_CEMENT_COLOUR, CEMENT_ALPHA),
        (LABEL_EXTRAVERTEBRAL, EXTRAVERTEBRAL_COLOUR, 0.75),
    ):
        rgba[labels == label] = (*colour, alpha)
    return rgba


def _draw_slice(axes, sample: PlaneSample, plane: SplitPlane) -> None:
    width, level = BONE_WINDOW_HU
    extent = sample.extent_mm
    axes.imshow(
        sample.hu,
        cmap="gray",
        vmin=level - width / 2.0,
        vmax=level + width / 2.0,
        extent=extent,
        interpolation="nearest",
    )
    axes.imshow(overlay_rgba(sample.labels), extent=extent, interpolation="nearest")
    columns = (np.arange(sample.labels.shape[1]) + 0.5) * sample.pixel_mm
    rows = (np.arange(sample.labels.shape[0]) + 0.5) * sample.pixel_mm
    body = np.isin(sample.labels, (LABEL_BODY, LABEL_OTHER_CEMENT, LABEL_PUNCTURE_CEMENT))
    if body.any() and not body.all():
        axes.contour(columns, rows, body.astype(float), levels=[0.5], colors=[BODY_COLOUR], linewidths=1.5)
    if sample.view in ("axial", "coronal"):
        distance = plane.signed_distance_mm(sample.points_ras.reshape(-1, 3)).reshape(sample.labels.shape)
        if distance.min() < 0.0 < distance.max():
            axes.contour(
                columns, rows, distance, levels=[0.0], colors=[PLANE_COLOUR], linestyles="--", linewidths=1.5
            )
    _draw_orientation_letters(axes, VIEW_AXES[sample.view].letters)
    _draw_scale_bar(axes, extent)
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(extent[2], extent[3])
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(
        f"{sample.view.capitalize()} (radiological: {VIEW_AXES[sample.view].letters[0]} on the left)"
    )


def _draw_orientation_letters(axes, letters: tuple[str, str, str, str]) -> None:
    style = {
        "color": "yellow",
        "fontsize": 14,
        "fontweight": "bold",
        "transform": axes.transAxes,
        "bbox": {"facecolor": "black", "alpha": 0.5, "edgecolor": "none", "pad": 1.5},
    }
    left, right, top, bottom = letters
    axes.text(0.02, 0.5, left, ha="left", va="center", **style)
    axes.text(0.98, 0.5, right, ha="right", va="center", **style)
    axes.text(0.5, 0.98, top, ha="center", va="top", **style)
    axes.text(0.5, 0.02, bottom, ha="center", va="bottom", **style)


def _draw_scale_bar(axes, extent: tuple[float, float, float, float]) -> None:
    x0 = extent[0] + 0.05 * (extent[1] - extent[0])
    y0 = extent[2] - 0.06 * (extent[2] - extent[3])
    axes.plot([x0, x0 + SCALE_BAR_MM], [y0, y0], color="white", linewidth=3, solid_capstyle="butt")
    axes.text(
        x0 + SCALE_BAR_MM / 2.0, y0 - 1.0, f"{SCALE_BAR_MM:g} mm", color="white", ha="center", va="bottom"
    )


def _mask_surface(mask: np.ndarray, geometry: VolumeGeometry):
    """A vtkPolyData surface (RAS mm) of a boolean ``[k, j, i]`` mask, or None when empty."""
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D, vtkPolyDataNormals
    from vtkmodules.vtkFiltersGeneral import vtkTransformPolyDataFilter

    indices = np.nonzero(mask)
    if indices[0].size == 0:
        return None
    low = np.array([index.min() for index in indices]) - 1
    high = np.array([index.max() for index in indices]) + 2
    padded = np.zeros(tuple(high - low), dtype=np.uint8)
    padded[indices[0] - low[0], indices[1] - low[1], indices[2] - low[2]] = 1
    image = vtkImageData()
    image.SetDimensions(padded.shape[2], padded.shape[1], padded.shape[0])
    image.SetOrigin(float(low[2]), float(low[1]), float(low[0]))
    image.GetPointData().SetScalars(numpy_to_vtk(padded.ravel(), deep=True))
    surface = vtkFlyingEdges3D()
    surface.SetInputData(image)
    surface.SetValue(0, 0.5)
    transform = vtkTransform()
    transform.SetMatrix(geometry.ijk_to_ras.ravel().tolist())
    placed = vtkTransformPolyDataFilter()
    placed.SetInputConnection(surface.GetOutputPort())
    placed.SetTransform(transform)
    normals = vtkPolyDataNormals()
    normals.SetInputConnection(placed.GetOutputPort())
    normals.ConsistencyOn()
    normals.AutoOrientNormalsOn()
    normals.Update()
    return normals.GetOutput()


def _plane_quad(plane: SplitPlane, low_ras: np.ndarray, high_ras: np.ndarray):
    """A vtkPolyData square of the split plane (RAS mm) over the box ``low_ras``..``high_ras``."""
    from vtkmodules.vtkFiltersSources import vtkPlaneSource

    anterior = np.array([0.0, 1.0, 0.0])
    in_plane_a = anterior - (anterior @ plane.normal_ras) * plane.normal_ras
    in_plane_a /= np.linalg.norm(in_plane_a)
    in_plane_b = np.cross(plane.normal_ras, in_plane_a)
    centre = 0.5 * (low_ras + high_ras)
    centre = centre - ((centre - plane.point_ras) @ plane.normal_ras) * plane.normal_ras
    half = 0.5 * (high_ras - low_ras)
    half_a = float(np.abs(in_plane_a) @ half)
    half_b = float(np.abs(in_plane_b) @ half)
    origin = centre - half_a * in_plane_a - half_b * in_plane_b
    source = vtkPlaneSource()
    source.SetOrigin(*origin)
    source.SetPoint1(*(origin + 2.0 * half_a * in_plane_a))
    source.SetPoint2(*(origin + 2.0 * half_b * in_plane_b))
    source.Update()
    return source.GetOutput()


def render_3d(result: VertebraResult, size_px: tuple[int, int] = RENDER_SIZE_PX) -> np.ndarray:
    """An off-screen VTK rendering ``(H, W, 3)`` uint8 of the body, cement and split plane.

    Seen from anterior and slightly superior and to the patient's right, so patient right is on
    the image left as in the coronal panel. Body translucent beige, puncture-side cement
    magenta, other cement in the body blue, extravertebral cement red, plane translucent.
    """
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL renderer, mapper and window)
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer, vtkWindowToImageFilter

    measurement = result.measurement
    plane = split_plane_from_endplates(measurement.upper_ras, measurement.lower_ras, measurement.side)
    low, high = mask_bounds_ras(result.body_mask, result.geometry)
    renderer = vtkRenderer()
    renderer.SetBackground(0.08, 0.08, 0.12)
    other_cement = result.cement_mask & result.body_mask & ~result.puncture_side_cement_mask
    parts = (
        (_mask_surface(result.puncture_side_cement_mask, result.geometry), PUNCTURE_CEMENT_COLOUR, 1.0),
        (_mask_surface(other_cement, result.geometry), OTHER_CEMENT_3D_COLOUR, 1.0),
        (_mask_surface(result.extravertebral_cement_mask, result.geometry), EXTRAVERTEBRAL_COLOUR, 1.0),
        (_mask_surface(result.body_mask, result.geometry), BODY_COLOUR, 0.25),
        (_plane_quad(plane, low - 3.0, high + 3.0), PLANE_COLOUR, 0.3),
    )
    for polydata, colour, opacity in parts:
        if polydata is None or polydata.GetNumberOfPoints() == 0:
            continue
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(polydata)
        mapper.ScalarVisibilityOff()
        actor = vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(*colour)
        actor.GetProperty().SetOpacity(opacity)
        actor.GetProperty().BackfaceCullingOff()
        renderer.AddActor(actor)
    renderer.SetUseDepthPeeling(1)
    camera = renderer.GetActiveCamera()
    centre = 0.5 * (low + high)
    camera.SetFocalPoint(*centre)
    camera.SetPosition(*(centre + np.array([0.0, 300.0, 0.0])))
    camera.SetViewUp(0.0, 0.0, 1.0)
    camera.Azimuth(20.0)
    camera.Elevation(20.0)
    camera.OrthogonalizeViewUp()
    renderer.ResetCamera()
    camera.Zoom(1.3)
    window = _offscreen_window()
    window.SetSize(int(size_px[0]), int(size_px[1]))
    window.SetAlphaBitPlanes(1)
    window.SetMultiSamples(0)
    window.AddRenderer(renderer)
    try:
        window.Render()
        grabber = vtkWindowToImageFilter()
        grabber.SetInput(window)
        grabber.SetInputBufferTypeToRGB()
        grabber.ReadFrontBufferOff()
        grabber.Update()
        image = grabber.GetOutput()
        width, height, _ = image.GetDimensions()
        pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)
    finally:
        window.Finalize()
    return np.ascontiguousarray(pixels[::-1, :, :3]).astype(np.uint8)


def _offscreen_window():
    """An off-screen render window: EGL directly when there is no X display, else VTK's default."""
    import vtkmodules.vtkRenderingOpenGL2 as opengl
    from vtkmodules.vtkRenderingCore import vtkRenderWindow

    egl_window = getattr(opengl, "vtkEGLRenderWindow", None)
    if not os.environ.get("DISPLAY") and egl_window is not None:
        window = egl_window()
    else:
        window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    return window


def _legend_handles() -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Line2D([0], [0], color=BODY_COLOUR, linewidth=2, label="Vertebral body outline"),
        Patch(facecolor=PUNCTURE_CEMENT_COLOUR, alpha=CEMENT_ALPHA, label="Puncture-side cement (PSBCV)"),
        Patch(facecolor=OTHER_CEMENT_COLOUR, alpha=CEMENT_ALPHA, label="Other cement in the body"),
        Patch(facecolor=EXTRAVERTEBRAL_COLOUR, alpha=0.75, label="Extravertebral cement"),
        Line2D([0], [0], color=PLANE_COLOUR, linestyle="--", linewidth=2, label="Split plane"),
    ]


def write_level_figure(path: str | os.PathLike, ct: CtVolume, result: VertebraResult, *, title: str) -> Path:
    """Write the level's PNG figure (about 1600x1200 px) to ``path`` atomically and return it.

    Panels: axial, coronal and sagittal slices through the centroid of the cement in the body
    (the body's centroid without cement) and a 3D rendering; see the module docstring.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if not result.geometry.same_grid_as(ct.geometry):
        raise CementLeakageError("the result's masks are not on the CT's grid: measure this CT again")
    labels = label_volume(result)
    centre = slice_centre_ras(result)
    low, high = panel_box_ras(result)
    measurement = result.measurement
    plane = split_plane_from_endplates(measurement.upper_ras, measurement.lower_ras, measurement.side)

    figure = Figure(figsize=(FIGURE_SIZE_PX[0] / FIGURE_DPI, FIGURE_SIZE_PX[1] / FIGURE_DPI), dpi=FIGURE_DPI)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 2, left=0.03, right=0.97, top=0.90, bottom=0.08, wspace=0.08, hspace=0.12)
    for view, cell in zip(VIEWS, (grid[0, 0], grid[0, 1], grid[1, 0])):
        axes = figure.add_subplot(cell)
        _draw_slice(axes, slice_through(ct, labels, view, centre, low, high), plane)
    axes = figure.add_subplot(grid[1, 1])
    axes.imshow(render_3d(result))
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title("3D, seen from anterior-superior (patient right on the left)")
    figure.suptitle(title, fontsize=18, fontweight="bold")
    figure.text(
        0.5,
        0.935,
        f"{measurement.side.capitalize()} puncture: PSBCV/VBV {measurement.psbcv_vbv_pct:.2f}% "
        f"(cut-off {measurement.cutoff_pct:.2f}%), BCV/VBV {measurement.bcv_vbv_pct:.2f}%; "
        f"slices through RAS {centre[0]:.1f}, {centre[1]:.1f}, {centre[2]:.1f} mm",
        ha="center",
        fontsize=12,
    )
    figure.legend(handles=_legend_handles(), loc="lower center", ncol=5, fontsize=12, frameon=False)
    _save_atomically(figure, path)
    return path


def _save_atomically(figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
    os.close(handle)
    try:
        figure.savefig(temporary, format="png", dpi=FIGURE_DPI, facecolor="white")
        _apply_umask_permissions(Path(temporary))
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _apply_umask_permissions(path: Path) -> None:
    """Give a temporary file the permissions of an ordinary new file (umask), not private ones."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)
