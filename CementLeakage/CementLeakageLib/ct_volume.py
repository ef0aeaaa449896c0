"""A CT image in memory: Hounsfield units on a grid, with the identity of its source."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import VolumeGeometry


@dataclass
class CtVolume:
    """CT intensities in HU, indexed ``[k, j, i]``, on ``geometry`` (IJK-to-RAS, mm).

    ``source`` says where the image came from (a path, a node name or ``phantom``);
    ``sha256`` identifies the input file(s) (empty for data made in memory);
    ``metadata`` keeps identifiers such as DICOM UIDs.
    """

    array_hu: np.ndarray
    geometry: VolumeGeometry
    source: str = ""
    sha256: str = ""
    metadata: dict = field(default_factory=dict)
