"""Writing MRML nodes to files through their Slicer storage node, atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import CementLeakageError


def write_node_atomically(scene, storage_node, node, path: Path, suffix: str) -> Path:
    """Write ``node`` with ``storage_node`` to ``path``: a temporary name first, then a rename.

    ``suffix`` (such as ``.seg.nrrd``) lets the storage node pick its file format. A failed
    write leaves neither ``path`` changed nor a temporary file behind.
    """
    scene.AddNode(storage_node)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    os.close(handle)
    try:
        storage_node.SetFileName(temporary)
        if not storage_node.WriteData(node):
            raise CementLeakageError(f"{path.name} could not be written: check the folder")
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path
