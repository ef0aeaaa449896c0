"""CementLeakage: puncture-side bone cement volume ratio after vertebroplasty.

The package is the science behind the 3D Slicer module of the same name. It imports no Qt,
runs inside desktop Slicer, on the command line (``cementleakage``) and in tests.

Conventions used throughout:

* image arrays are numpy arrays indexed ``[k, j, i]`` (slice, row, column), as VTK and
  Slicer store them;
* every array comes with a :class:`~CementLeakageLib.geometry.VolumeGeometry` holding the
  full 4x4 IJK-to-RAS matrix (origin, spacing and direction), never spacing alone;
* points are RAS millimetres (MRML and markups convention); files on disk speak LPS and
  are converted on reading and writing;
* volumes are reported in cm³ and ratios in percent, with the unit in the field name.
"""

__version__ = "0.1.0"
