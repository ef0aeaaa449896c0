"""Names of where cement outside the vertebral body lies, and Yeom's leakage types.

Locations are relative to the target body, in its vertebra frame (see :mod:`vertebra_frame`):
lateral (paravertebral), anterior, posterior into the spinal canal, superior or inferior into
the adjacent disc, or along the pedicle tract of the puncture (the injection's own path, not
leakage). Yeom et al. (J Bone Joint Surg Br 2003;85:83-89) classify leakage by route: B through
the basivertebral vein, S through a segmental vein, C through a cortical defect; D (into the
disc) was added later. A type is only ever a suggestion for the reader to confirm.
"""

from __future__ import annotations

PARAVERTEBRAL = "paravertebral"
ANTERIOR = "anterior"
SPINAL_CANAL = "spinal canal"
DISC_SUPERIOR = "disc superior"
DISC_INFERIOR = "disc inferior"
PEDICLE_TRACT = "pedicle tract"

LOCATIONS = (PARAVERTEBRAL, ANTERIOR, SPINAL_CANAL, DISC_SUPERIOR, DISC_INFERIOR, PEDICLE_TRACT)
"""Every location class a cement component outside the body can get."""

NOT_LEAKAGE = frozenset({PEDICLE_TRACT})
"""Locations that are cement of the injection itself, reported but not counted as leakage."""

YEOM_TYPES = {
    "B": "basivertebral vein",
    "S": "segmental vein",
    "C": "cortical defect",
    "D": "disc",
}
"""Yeom's leakage types (B, S, C; D added later) and the route each names."""

SUGGESTED_YEOM_TYPE = {
    PARAVERTEBRAL: "S",
    ANTERIOR: "C",
    SPINAL_CANAL: "B",
    DISC_SUPERIOR: "D",
    DISC_INFERIOR: "D",
    PEDICLE_TRACT: None,
}
"""The Yeom type a location suggests (None for the pedicle tract, which is not leakage)."""
