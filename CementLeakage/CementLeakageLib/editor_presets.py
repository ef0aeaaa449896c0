"""Presets of Slicer's Segment Editor effects for correcting the masks by hand.

Each preset names one of Slicer's own effects and the parameter values the panel sets when
the user picks it: the cement and bone thresholds (HU) are the measurement's, so a mask drawn
with the Threshold preset is the mask the measurement would use. Slicer keeps an effect's
parameters on the Segment Editor parameter node (``vtkMRMLSegmentEditorNode``) as attributes
named ``<effect>.<parameter>``; :func:`store_preset` writes them there the same way, which
also works without the Qt effects (headless).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .parameters import MeasurementParameters


@dataclass(frozen=True)
class EffectPreset:
    """One Segment Editor effect and the parameters it starts with.

    ``effect_name`` is the name Slicer registers the effect under (``Threshold``,
    ``Islands``...); ``parameters`` are effect parameter names and values as text, as
    Slicer stores them; ``segment_role`` says which segment the effect is meant for
    (``body``, ``cement`` or ``any``).
    """

    key: str
    title: str
    effect_name: str
    parameters: dict = field(default_factory=dict)
    segment_role: str = "any"
    tooltip: str = ""


def _number(value: float) -> str:
    return f"{float(value):g}"


def _threshold_preset(material: str, segment_role: str, low_hu: float, high_hu: float) -> EffectPreset:
    """Slicer's Threshold effect set to the measurement's window of ``material`` (HU)."""
    return EffectPreset(
        key=f"threshold_{material}",
        title=f"Threshold {material}",
        effect_name="Threshold",
        parameters={"MinimumThreshold": _number(low_hu), "MaximumThreshold": _number(high_hu)},
        segment_role=segment_role,
        tooltip=f"Threshold the selected segment to {material}, {low_hu:g} to {high_hu:g} HU",
    )


def editor_presets(parameters: MeasurementParameters | None = None) -> dict[str, EffectPreset]:
    """The panel's presets, keyed by ``EffectPreset.key``, with thresholds from ``parameters`` (HU)."""
    parameters = parameters or MeasurementParameters()
    presets = [
        _threshold_preset("cement", "cement", parameters.cement_min_hu, parameters.cement_max_hu),
        _threshold_preset("bone", "body", parameters.bone_min_hu, parameters.bone_max_hu),
        EffectPreset(
            key="islands",
            title="Keep largest island",
            effect_name="Islands",
            parameters={"Operation": "KEEP_LARGEST_ISLAND", "MinimumSize": "1000"},
            segment_role="body",
            tooltip="Keep the largest connected piece of the selected segment (drops ribs and neighbours)",
        ),
        EffectPreset(
            key="scissors",
            title="Scissors",
            effect_name="Scissors",
            parameters={"Operation": "EraseInside", "Shape": "FreeForm"},
            tooltip="Cut away what you outline, e.g. a pedicle or a rib head joined to the body",
        ),
        EffectPreset(key="paint", title="Paint", effect_name="Paint", tooltip="Add to the selected segment"),
        EffectPreset(
            key="erase", title="Erase", effect_name="Erase", tooltip="Remove from the selected segment"
        ),
        EffectPreset(
            key="logical",
            title="Logical operators",
            effect_name="Logical operators",
            parameters={"Operation": "SUBTRACT"},
            tooltip="Combine segments, e.g. subtract leaked cement from the body",
        ),
    ]
    return {preset.key: preset for preset in presets}


def effect_parameter_attribute(effect_name: str, parameter: str) -> str:
    """Attribute name under which Slicer stores an effect parameter on the editor node."""
    return f"{effect_name}.{parameter}"


def store_preset(segment_editor_node, preset: EffectPreset) -> None:
    """Write ``preset``'s parameters onto a ``vtkMRMLSegmentEditorNode`` as Slicer stores them."""
    for parameter, value in preset.parameters.items():
        segment_editor_node.SetAttribute(effect_parameter_attribute(preset.effect_name, parameter), value)


def stored_parameters(segment_editor_node, preset: EffectPreset) -> dict[str, str | None]:
    """The values a ``vtkMRMLSegmentEditorNode`` holds for ``preset``'s parameters."""
    return {
        parameter: segment_editor_node.GetAttribute(effect_parameter_attribute(preset.effect_name, parameter))
        for parameter in preset.parameters
    }
