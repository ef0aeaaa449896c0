"""Static checks of the 3D Slicer extension: what desktop Slicer 5.8 loads, read without running it.

Desktop Slicer cannot run here, so these tests read the source tree: Python 3.9 syntax of every
file Slicer imports, the names and widget classes of the Qt Designer file, the CMake lists of
the module's files, the icon, and the Extensions Index entry. They use only the standard library
(``unittest``), so they run under pytest and, registered by ``Testing/CMakeLists.txt``, with
Slicer's own Python in an extension build.
"""

from __future__ import annotations

import ast
import json
import re
import struct
import unittest
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
MODULE_NAME = "CementLeakage"
MODULE_DIR = REPOSITORY / MODULE_NAME
MODULE_FILE = MODULE_DIR / f"{MODULE_NAME}.py"
LIBRARY_DIR = MODULE_DIR / f"{MODULE_NAME}Lib"
UI_FILE = MODULE_DIR / "Resources" / "UI" / f"{MODULE_NAME}.ui"
MODULE_ICON = MODULE_DIR / "Resources" / "Icons" / f"{MODULE_NAME}.png"
EXTENSION_ICON = REPOSITORY / "Resources" / "Icons" / f"{MODULE_NAME}.png"
TOP_CMAKE = REPOSITORY / "CMakeLists.txt"
MODULE_CMAKE = MODULE_DIR / "CMakeLists.txt"
INDEX_ENTRY = REPOSITORY / f"{MODULE_NAME}.json"

OLDEST_SLICER_PYTHON = (3, 9)
"""Slicer 5.8, the oldest release the extension supports, runs Python 3.9."""

PACKAGE_DATA_PATTERNS = ("*.json",)
"""Files of CementLeakageLib besides Python sources that the package ships (pyproject package-data)."""

NEWER_THAN_PYTHON_39 = {
    "typing": {
        "Concatenate",
        "LiteralString",
        "Never",
        "NotRequired",
        "ParamSpec",
        "ReadOnly",
        "Required",
        "Self",
        "TypeAlias",
        "TypeGuard",
        "TypeIs",
        "TypeVarTuple",
        "Unpack",
        "assert_never",
        "assert_type",
        "dataclass_transform",
        "is_typeddict",
        "override",
        "reveal_type",
    },
    "itertools": {"pairwise", "batched"},
    "enum": {"StrEnum", "ReprEnum", "verify"},
    "datetime": {"UTC"},
}
"""Names that Python 3.9's standard library does not have (module -> names)."""

NEWER_THAN_PYTHON_39_MODULES = {"tomllib"}
NEWER_THAN_PYTHON_39_DATACLASS_OPTIONS = {"kw_only", "slots", "match_args", "weakref_slot"}

QT_CLASSES = {
    "QCheckBox",
    "QComboBox",
    "QDoubleSpinBox",
    "QFormLayout",
    "QFrame",
    "QGridLayout",
    "QGroupBox",
    "QHBoxLayout",
    "QLabel",
    "QLineEdit",
    "QPushButton",
    "QRadioButton",
    "QSpinBox",
    "QTableView",
    "QTableWidget",
    "QTextEdit",
    "QToolButton",
    "QVBoxLayout",
    "QWidget",
}
SLICER_CLASSES = {
    "ctkCheckBox",
    "ctkCollapsibleButton",
    "ctkCollapsibleGroupBox",
    "ctkComboBox",
    "ctkDirectoryButton",
    "ctkDoubleSpinBox",
    "ctkMenuButton",
    "ctkRangeWidget",
    "ctkSliderWidget",
    "qMRMLNodeComboBox",
    "qMRMLRangeWidget",
    "qMRMLSegmentEditorWidget",
    "qMRMLSegmentSelectorWidget",
    "qMRMLSegmentationShow3DButton",
    "qMRMLSliderWidget",
    "qMRMLTableView",
    "qMRMLWidget",
    "qSlicerMarkupsPlaceWidget",
    "qSlicerSimpleMarkupsWidget",
    "qSlicerWidget",
}
"""CTK, qMRML and qSlicer widgets that Slicer 5.8 ships with Qt Designer plugins."""

SCENE_AWARE_CLASSES = {
    "qMRMLNodeComboBox",
    "qMRMLRangeWidget",
    "qMRMLSegmentEditorWidget",
    "qMRMLSegmentSelectorWidget",
    "qMRMLSliderWidget",
    "qMRMLTableView",
    "qSlicerMarkupsPlaceWidget",
    "qSlicerSimpleMarkupsWidget",
}
"""Widgets with a ``setMRMLScene(vtkMRMLScene*)`` slot: each needs the top widget's scene."""

PARAMETERS_SYNCED_IN_CODE = {"endplatePoints"}
"""Parameter node fields without a ``SlicerParameterName`` widget (the level's point list is chosen
by the module file, which shows it in the markups place widget)."""

INDEX_ENTRY_KEYS = {
    "$schema",
    "category",
    "scm_url",
    "scm_revision",
    "scm_type",
    "build_dependencies",
    "build_subdirectory",
    "enabled",
    "tier",
}
"""Keys allowed by slicer-extension-catalog-entry-schema v1.0.1 (additionalProperties is false)."""

INDEX_SCHEMA = (
    "https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/"
    "slicer-extension-catalog-entry-schema-v1.0.1.json#"
)


def python_files_slicer_loads() -> list[Path]:
    """The module file and every Python file of the library package, sorted."""
    return [MODULE_FILE] + sorted(p for p in LIBRARY_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def parse(path: Path) -> ast.Module:
    return ast.parse(
        path.read_text(encoding="utf-8"), filename=str(path), feature_version=OLDEST_SLICER_PYTHON
    )


def has_future_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )


def annotation_nodes(tree: ast.Module) -> list[ast.expr]:
    """Every annotation expression: arguments, return values and annotated assignments."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            found += [a.annotation for a in every if a.annotation is not None]
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return found


def contains_union_operator(node: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(node))


def is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def runtime_union_problems(tree: ast.Module, path: Path) -> list[str]:
    """``X | Y`` type unions that Python 3.9 would evaluate (and fail on) at run time."""
    problems = []
    if not has_future_annotations(tree):
        problems += [
            f"{path.name}:{a.lineno}: union in an annotation evaluated at run time"
            for a in annotation_nodes(tree)
            if contains_union_operator(a)
        ]
    annotation_ids = {id(n) for a in annotation_nodes(tree) for n in ast.walk(a)}
    for node in ast.walk(tree):
        if id(node) in annotation_ids:
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            if is_none(node.left) or is_none(node.right):
                problems.append(f"{path.name}:{node.lineno}: 'X | None' evaluated at run time")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2
            and contains_union_operator(node.args[1])
        ):
            problems.append(f"{path.name}:{node.lineno}: {node.func.id}() with a type union")
    return problems


def newer_api_problems(tree: ast.Module, path: Path) -> list[str]:
    """Standard library features newer than Python 3.9."""
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in NEWER_THAN_PYTHON_39:
            problems += [
                f"{path.name}:{node.lineno}: {node.module}.{alias.name} needs Python 3.10+"
                for alias in node.names
                if alias.name in NEWER_THAN_PYTHON_39[node.module]
            ]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
            problems += [
                f"{path.name}:{node.lineno}: module {m} needs Python 3.11+"
                for m in modules
                if m in NEWER_THAN_PYTHON_39_MODULES
            ]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.attr in NEWER_THAN_PYTHON_39.get(node.value.id, ())
        ):
            problems.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr} needs Python 3.10+")
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            keywords = {k.arg for k in node.keywords}
            if name == "zip" and "strict" in keywords:
                problems.append(f"{path.name}:{node.lineno}: zip(strict=...) needs Python 3.10+")
            if name == "dataclass" and keywords & NEWER_THAN_PYTHON_39_DATACLASS_OPTIONS:
                problems.append(f"{path.name}:{node.lineno}: dataclass options need Python 3.10+")
    return problems


def ui_tree() -> ElementTree.ElementTree:
    return ElementTree.parse(UI_FILE)


def ui_object_names() -> set[str]:
    root = ui_tree().getroot()
    return {e.get("name") for tag in ("widget", "layout", "spacer") for e in root.iter(tag)}


def ui_widgets() -> dict[str, str]:
    """objectName -> class of every widget in the .ui file."""
    return {e.get("name"): e.get("class") for e in ui_tree().getroot().iter("widget")}


def ui_parameter_names() -> dict[str, str]:
    """objectName -> SlicerParameterName of every widget bound to the parameter node."""
    bound = {}
    for widget in ui_tree().getroot().iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[widget.get("name")] = prop.findtext("string")
    return bound


def module_ui_lookups() -> set[str]:
    """Names the module file reads as ``self.ui.<name>``."""
    names = set()
    for node in ast.walk(parse(MODULE_FILE)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        ):
            names.add(node.attr)
    return names


def parameter_node_fields() -> set[str]:
    """Field names of the ``@parameterNodeWrapper`` class of the module file."""
    for node in parse(MODULE_FILE).body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(d, ast.Name) and d.id == "parameterNodeWrapper" for d in node.decorator_list
        ):
            return {
                s.target.id
                for s in node.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
            }
    raise AssertionError(f"{MODULE_FILE.name} has no @parameterNodeWrapper class")


def cmake_text(path: Path) -> str:
    """CMake source without comments (``#`` to the end of the line; no ``#`` inside strings here)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        code = line
        if "#" in line and '"' not in line:
            code = line.split("#", 1)[0]
        lines.append(code)
    return "\n".join(lines)


def cmake_set(text: str, variable: str) -> list[str]:
    """Items of ``set(<variable> ...)`` in CMake source, with ``${MODULE_NAME}`` expanded."""
    match = re.search(r"\bset\(\s*" + re.escape(variable) + r"\b(.*?)\)", text, re.DOTALL)
    if match is None:
        raise AssertionError(f"no set({variable} ...) in the CMake file")
    module_name = re.search(r"\bset\(\s*MODULE_NAME\s+(\S+?)\s*\)", text)
    items = match.group(1).split()
    if module_name:
        items = [item.replace("${MODULE_NAME}", module_name.group(1)) for item in items]
    return items


def cmake_string(text: str, variable: str) -> str:
    """The quoted value of ``set(<variable> "...")``."""
    match = re.search(r"\bset\(\s*" + re.escape(variable) + r'\s+"([^"]*)"', text)
    if match is None:
        raise AssertionError(f'no set({variable} "...") in the CMake file')
    return match.group(1)


def relative(paths) -> list[str]:
    return sorted(p.relative_to(MODULE_DIR).as_posix() for p in paths)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height (pixels) from a PNG file's IHDR chunk; fails if the file is not a PNG."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class PythonVersionTest(unittest.TestCase):
    """Everything Slicer imports runs on Slicer 5.8's Python 3.9."""

    def test_files_parse_as_python_39(self):
        files = python_files_slicer_loads()
        self.assertIn(LIBRARY_DIR / "__init__.py", files)
        for path in files:
            with self.subTest(path=path.name):
                parse(path)

    def test_no_union_types_evaluated_at_run_time(self):
        problems = [
            p for path in python_files_slicer_loads() for p in runtime_union_problems(parse(path), path)
        ]
        self.assertEqual(problems, [])

    def test_no_standard_library_features_newer_than_39(self):
        problems = [p for path in python_files_slicer_loads() for p in newer_api_problems(parse(path), path)]
        self.assertEqual(problems, [])

    def test_library_modules_with_annotations_postpone_them(self):
        missing = [
            path.name
            for path in python_files_slicer_loads()[1:]
            if annotation_nodes(parse(path)) and not has_future_annotations(parse(path))
        ]
        self.assertEqual(missing, [])

    def test_module_file_evaluates_its_annotations(self):
        # The parameter node wrapper reads the annotations with typing.get_type_hints, so the module
        # file keeps them as objects: no postponed evaluation, no union operator in any annotation.
        tree = parse(MODULE_FILE)
        self.assertFalse(has_future_annotations(tree))
        self.assertEqual([a.lineno for a in annotation_nodes(tree) if contains_union_operator(a)], [])

    def test_checker_catches_run_time_unions(self):
        tree = ast.parse("def f(x: int | None) -> None:\n    return isinstance(x, int | str)\n")
        self.assertEqual(
            runtime_union_problems(tree, Path("example.py")),
            [
                "example.py:1: union in an annotation evaluated at run time",
                "example.py:2: isinstance() with a type union",
            ],
        )
        postponed = ast.parse("from __future__ import annotations\ndef f(x: int | None) -> None: ...\n")
        self.assertEqual(runtime_union_problems(postponed, Path("example.py")), [])


class UserInterfaceTest(unittest.TestCase):
    """The Qt Designer file matches what the module file looks up and what Slicer ships."""

    def test_every_widget_the_module_uses_exists(self):
        used = module_ui_lookups()
        self.assertIn("applyButton", used)
        self.assertIn("resultsTableView", used)
        self.assertIn("flagLabel", used)
        self.assertEqual(sorted(used - ui_object_names()), [])

    def test_preset_buttons_exist_and_open_known_presets(self):
        """The buttons the module looks up by name (PRESET_BUTTONS) are in the .ui file, and
        each opens a preset the library defines."""
        from CementLeakageLib.editor_presets import editor_presets

        tree = parse(MODULE_FILE)
        assignment = next(
            node
            for node in tree.body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PRESET_BUTTONS"
        )
        buttons = ast.literal_eval(assignment.value)
        widgets = ui_widgets()
        for button, preset in buttons.items():
            self.assertEqual(widgets.get(button), "QPushButton", button)
            self.assertIn(preset, editor_presets())
        self.assertEqual(sorted(buttons.values()), sorted(editor_presets()))

    def test_widget_classes_are_shipped_with_slicer(self):
        root = ui_tree().getroot()
        widget_classes = {e.get("class") for e in root.iter("widget")}
        layout_classes = {e.get("class") for e in root.iter("layout")}
        custom_classes = {e.findtext("class") for e in root.iter("customwidget")}
        self.assertEqual(sorted(widget_classes - QT_CLASSES - SLICER_CLASSES), [])
        self.assertEqual(
            sorted(layout_classes - {"QFormLayout", "QVBoxLayout", "QHBoxLayout", "QGridLayout"}), []
        )
        self.assertEqual(sorted(custom_classes - SLICER_CLASSES), [])

    def test_custom_widgets_are_declared(self):
        root = ui_tree().getroot()
        declared = {e.findtext("class"): e.findtext("extends") for e in root.iter("customwidget")}
        used = {e.get("class") for e in root.iter("widget")} & SLICER_CLASSES
        self.assertEqual(sorted(used - set(declared)), [])
        for name, base in declared.items():
            with self.subTest(customwidget=name):
                self.assertIn(base, QT_CLASSES | SLICER_CLASSES)
                self.assertEqual(
                    root.find(f"customwidgets/customwidget[class='{name}']").findtext("header"), f"{name}.h"
                )

    def test_top_widget_passes_the_scene_to_every_scene_aware_widget(self):
        root = ui_tree().getroot()
        top = root.find("widget")
        self.assertEqual((top.get("class"), top.get("name")), ("qMRMLWidget", MODULE_NAME))
        receivers = set()
        for connection in root.iter("connection"):
            self.assertEqual(connection.findtext("sender"), MODULE_NAME)
            self.assertEqual(connection.findtext("signal"), "mrmlSceneChanged(vtkMRMLScene*)")
            self.assertEqual(connection.findtext("slot"), "setMRMLScene(vtkMRMLScene*)")
            receivers.add(connection.findtext("receiver"))
        scene_aware = {name for name, cls in ui_widgets().items() if cls in SCENE_AWARE_CLASSES}
        self.assertEqual(sorted(receivers), sorted(scene_aware))

    def test_bound_widgets_match_the_parameter_node(self):
        bound = ui_parameter_names()
        fields = parameter_node_fields()
        self.assertEqual(len(set(bound.values())), len(bound), "a parameter is bound to two widgets")
        self.assertEqual(sorted(set(bound.values()) - fields), [])
        self.assertEqual(sorted(fields - set(bound.values())), sorted(PARAMETERS_SYNCED_IN_CODE))
        self.assertEqual(bound["inputVolumeSelector"], "inputVolume")
        self.assertEqual(bound["cutoffSliderWidget"], "cutoffPercent")
        self.assertEqual(ui_widgets()["endplatePlaceWidget"], "qSlicerMarkupsPlaceWidget")
        self.assertEqual(ui_widgets()["segmentEditorWidget"], "qMRMLSegmentEditorWidget")
        self.assertEqual(bound["autoUpdateCheckBox"], "autoUpdate")


class CMakeListsTest(unittest.TestCase):
    """The module's CMake lists name exactly the files on disk."""

    def test_scripts_are_the_python_files_on_disk(self):
        listed = cmake_set(cmake_text(MODULE_CMAKE), "MODULE_PYTHON_SCRIPTS")
        on_disk = relative(MODULE_DIR.glob("*.py")) + relative(
            p for p in LIBRARY_DIR.rglob("*.py") if "__pycache__" not in p.parts
        )
        self.assertEqual(len(listed), len(set(listed)), "a script is listed twice")
        self.assertIn(f"{MODULE_NAME}.py", listed)
        self.assertIn(f"{MODULE_NAME}Lib/__init__.py", listed)
        self.assertEqual(sorted(listed), sorted(on_disk))

    def test_resources_are_the_resource_files_on_disk(self):
        listed = cmake_set(cmake_text(MODULE_CMAKE), "MODULE_PYTHON_RESOURCES")
        resources = (p for p in (MODULE_DIR / "Resources").rglob("*") if p.is_file())
        package_data = (p for pattern in PACKAGE_DATA_PATTERNS for p in LIBRARY_DIR.rglob(pattern))
        on_disk = relative(resources) + relative(p for p in package_data if "__pycache__" not in p.parts)
        self.assertEqual(len(listed), len(set(listed)), "a resource is listed twice")
        self.assertIn(f"Resources/Icons/{MODULE_NAME}.png", listed)
        self.assertIn(f"Resources/UI/{MODULE_NAME}.ui", listed)
        self.assertEqual(sorted(listed), sorted(on_disk))

    def test_listed_files_exist(self):
        text = cmake_text(MODULE_CMAKE)
        for name in cmake_set(text, "MODULE_PYTHON_SCRIPTS") + cmake_set(text, "MODULE_PYTHON_RESOURCES"):
            with self.subTest(file=name):
                self.assertTrue((MODULE_DIR / name).is_file())

    def test_module_is_built_as_a_scripted_module(self):
        text = cmake_text(MODULE_CMAKE)
        self.assertEqual(re.search(r"\bset\(\s*MODULE_NAME\s+(\S+?)\s*\)", text).group(1), MODULE_NAME)
        self.assertRegex(text, r"slicerMacroBuildScriptedModule\(\s*NAME \$\{MODULE_NAME\}")
        self.assertRegex(text, r"slicer_add_python_unittest\(\s*SCRIPT \$\{MODULE_NAME\}\.py\s*\)")
        self.assertIn(f"add_subdirectory({MODULE_NAME})", cmake_text(TOP_CMAKE))


class IconTest(unittest.TestCase):
    def test_icons_are_128_pixel_square_pngs(self):
        self.assertEqual(png_size(MODULE_ICON), (128, 128))
        self.assertEqual(png_size(EXTENSION_ICON), (128, 128))
        self.assertEqual(MODULE_ICON.read_bytes(), EXTENSION_ICON.read_bytes())

    def test_extension_icon_url_points_to_the_extension_icon(self):
        url = cmake_string(cmake_text(TOP_CMAKE), "EXTENSION_ICONURL")
        homepage = cmake_string(cmake_text(TOP_CMAKE), "EXTENSION_HOMEPAGE")
        repository = homepage.replace("https://github.com/", "https://raw.githubusercontent.com/")
        self.assertEqual(url, f"{repository}/main/{EXTENSION_ICON.relative_to(REPOSITORY).as_posix()}")


class ExtensionIndexEntryTest(unittest.TestCase):
    """The Extensions Index entry and the top-level CMake agree (Slicer 5.8+ conventions)."""

    def test_index_entry(self):
        entry = json.loads(INDEX_ENTRY.read_text(encoding="utf-8"))
        homepage = cmake_string(cmake_text(TOP_CMAKE), "EXTENSION_HOMEPAGE")
        self.assertEqual(entry["category"], "Quantification")
        self.assertEqual(entry["$schema"], INDEX_SCHEMA)
        self.assertEqual(entry["scm_url"], homepage)
        self.assertEqual(entry["scm_revision"], "main")
        self.assertEqual(entry["build_dependencies"], [])
        self.assertEqual(entry["build_subdirectory"], ".")
        self.assertIn(entry["tier"], range(1, 6))
        self.assertEqual(sorted(set(entry) - INDEX_ENTRY_KEYS), [])

    def test_project_name_equals_index_entry_name(self):
        projects = re.findall(r"\bproject\(\s*(\w+)", cmake_text(TOP_CMAKE))
        self.assertEqual(projects, [INDEX_ENTRY.stem])
        self.assertEqual(INDEX_ENTRY.stem, MODULE_NAME)

    def test_category_is_not_set_in_cmake(self):
        for path in (TOP_CMAKE, MODULE_CMAKE):
            with self.subTest(path=path.name):
                self.assertNotIn("EXTENSION_CATEGORY", path.read_text(encoding="utf-8"))

    def test_top_level_cmake_declares_the_extension(self):
        text = cmake_text(TOP_CMAKE)
        for variable in (
            "EXTENSION_HOMEPAGE",
            "EXTENSION_CONTRIBUTORS",
            "EXTENSION_DESCRIPTION",
            "EXTENSION_ICONURL",
            "EXTENSION_SCREENSHOTURLS",
        ):
            with self.subTest(variable=variable):
                self.assertNotEqual(cmake_string(text, variable).strip(), "")
        self.assertEqual(cmake_string(text, "EXTENSION_DEPENDS"), "NA")
        order = [
            text.index("find_package(Slicer REQUIRED)"),
            text.index("include(${Slicer_USE_FILE})"),
            text.index(f"add_subdirectory({MODULE_NAME})"),
            text.index("include(${Slicer_EXTENSION_GENERATE_CONFIG})"),
            text.index("include(${Slicer_EXTENSION_CPACK})"),
        ]
        self.assertEqual(order, sorted(order))

    def test_license_is_apache_2(self):
        text = (REPOSITORY / "LICENSE").read_text(encoding="utf-8")
        self.assertEqual(text.split()[:4], ["Apache", "License", "Version", "2.0,"])
        self.assertIn("END OF TERMS AND CONDITIONS", text)


if __name__ == "__main__":
    unittest.main()
