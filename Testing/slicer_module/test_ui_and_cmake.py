"""The panel's .ui against the code that uses it, and the extension's CMake files against the tree."""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cmake_lists import check_module, listed_files, module_files

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "ScarEnhance"
UI = MODULE / "Resources" / "UI" / "ScarEnhance.ui"
LIB = MODULE / "ScarEnhanceLib"

# Which widget class the parameter-node wrapper binds to a field of each type (slicer.parameterNodeWrapper).
BINDABLE = {"int": {"QSpinBox", "QSlider"}, "float": {"QDoubleSpinBox", "ctkSliderWidget"}, "bool": {"QCheckBox"},
            "str": {"QComboBox", "QLineEdit"}, "vtkMRMLScalarVolumeNode": {"qMRMLNodeComboBox"},
            "vtkMRMLSegmentationNode": {"qMRMLNodeComboBox"}}


def ui_widgets() -> dict[str, ET.Element]:
    return {w.get("name"): w for w in ET.parse(UI).iter("widget")}


def module_level_dict(path: Path, name: str) -> dict:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} defines no {name}")


def parameter_fields() -> dict[str, str]:
    """field → base type name of ScarEnhanceParameterNode (Annotated[int, …] → 'int')."""
    tree = ast.parse((LIB / "Parameters.py").read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "ScarEnhanceParameterNode")
    fields = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign):
            ann = stmt.annotation
            if isinstance(ann, ast.Subscript):  # Annotated[T, …]
                ann = ann.slice.elts[0]
            fields[stmt.target.id] = ast.unparse(ann)
    return fields


def test_ui_is_a_designer_file_for_a_mrml_widget():
    root = ET.parse(UI).getroot()
    assert root.tag == "ui" and root.get("version") == "4.0"
    top = root.find("widget")
    assert (top.get("class"), top.get("name")) == ("qMRMLWidget", "ScarEnhance")
    custom = {c.findtext("class") for c in root.iter("customwidget")}
    used = {w.get("class") for w in root.iter("widget")}
    assert {c for c in used if c.startswith(("q", "ctk"))} <= custom  # every Slicer/CTK class declared


def test_every_widget_the_code_uses_exists_with_its_class():
    widgets = ui_widgets()
    declared = module_level_dict(LIB / "Widget.py", "UI_WIDGETS")
    for name, cls in declared.items():
        assert name in widgets, f"{UI.name} has no widget {name!r}"
        assert widgets[name].get("class") == cls, f"{name} is a {widgets[name].get('class')} in the .ui, the code expects {cls}"
    used = set()
    for path in LIB.glob("*.py"):
        used |= set(re.findall(r"\bself\.ui\.(\w+)", path.read_text()))
    assert used, "the panel uses no widgets?"
    assert used <= set(declared), f"used but not declared in UI_WIDGETS: {sorted(used - set(declared))}"


def test_bound_widgets_match_parameter_node_fields():
    fields = parameter_fields()
    assert {"inputVolume", "lam", "k", "steps", "seed", "dilateMm", "device", "keepUncertainty"} <= set(fields)
    bound = {}
    for name, w in ui_widgets().items():
        for prop in w.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = (name, w.get("class"))
    for parameter, (widget, cls) in bound.items():
        assert parameter in fields, f"{widget} is bound to {parameter!r}, which the parameter node lacks"
        assert cls in BINDABLE[fields[parameter]], f"{widget} ({cls}) cannot represent {parameter}: {fields[parameter]}"
    # Every user setting is on the panel: what connectGui does not bind, the widget syncs itself.
    synced_by_widget = {"roiSegmentation", "roiSegmentId", "segmentationModel", "diffusionModel"}
    assert set(fields) == set(bound) | synced_by_widget


def test_paper_defaults_in_the_ui_and_the_parameter_node():
    widgets = ui_widgets()

    def number(widget):
        return next(p.findtext("number") for p in widgets[widget].findall("property") if p.get("name") == "value")

    assert (number("lamSpinBox"), number("kSpinBox")) == ("250", "5")
    text = (LIB / "Parameters.py").read_text()
    assert re.search(r"lam: Annotated\[int, .*\] = 250", text) and re.search(r"k: Annotated\[int, .*\] = 5", text)


def test_the_panels_sample_agreement_starts_at_the_engines_default():
    from scarenhance.diffusion.agreement import DEFAULT_AGREEMENT
    from scarenhance.diffusion.inputs import MAX_AGREEMENT

    spin = ui_widgets()["agreementSpinBox"]
    value = {p.get("name"): p.findtext("double") for p in spin.findall("property")}
    assert float(value["value"]) == DEFAULT_AGREEMENT and float(value["maximum"]) == MAX_AGREEMENT
    match = re.search(r"agreement: Annotated\[float, WithinRange\(0\.0, MAX_AGREEMENT\)\] = ([0-9.]+)",
                      (LIB / "Parameters.py").read_text())
    assert match and float(match.group(1)) == DEFAULT_AGREEMENT
    from ScarEnhanceLib.Parameters import MAX_AGREEMENT as PANEL_MAX

    assert PANEL_MAX == MAX_AGREEMENT


def extension_modules() -> list[str]:
    return re.findall(r"^\s*add_subdirectory\((\w+)\)", (ROOT / "CMakeLists.txt").read_text(), re.M)


def test_extension_cmake_follows_slicers_template():
    text = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"^project\(ScarEnhance\)", text, re.M)
    for var in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS"):
        assert re.search(rf'set\(EXTENSION_{var} "[^"]+"\)', text), f"EXTENSION_{var} is not set"
    metadata = dict(re.findall(r'set\((\w+) "([^"]*)"\)', text))
    # Slicer's ExtensionDescriptionSpec: "Firstname Lastname ([SubOrg, ]Org), …"
    contributors = metadata["EXTENSION_CONTRIBUTORS"]
    assert re.fullmatch(r"[^(),]+ \([^()]+\)(, [^(),]+ \([^()]+\))*", contributors), contributors
    module_contributors = ast.literal_eval(re.search(r"^CONTRIBUTORS = (\[.*\])", (MODULE / "ScarEnhance.py").read_text(), re.M).group(1))
    assert ", ".join(module_contributors) == contributors
    repository = metadata["SCARENHANCE_REPOSITORY"]
    for var, path in (("ICONURL", "Resources/Icons/ScarEnhance.png"), ("SCREENSHOTURLS", "Resources/Screenshots/panel.png")):
        url = metadata[f"EXTENSION_{var}"].replace("${SCARENHANCE_REPOSITORY}", repository)
        assert url == f"{repository}/raw/main/{path}" and (ROOT / path).is_file()  # one address, files that exist
    assert metadata["EXTENSION_HOMEPAGE"].startswith("${SCARENHANCE_REPOSITORY}")
    assert "5.10 and later" in metadata["EXTENSION_DESCRIPTION"]
    assert re.search(r'set\(EXTENSION_DEPENDS "PyTorch"\)', text)
    assert "find_package(Slicer 5.10 REQUIRED)" in text and "include(${Slicer_USE_FILE})" in text
    assert "include(${Slicer_EXTENSION_CPACK})" in text
    assert extension_modules() == ["ScarEnhance", "ScarEnhanceTraining"]
    assert (ROOT / "Resources/Icons/ScarEnhance.png").is_file() and (ROOT / "Resources/Screenshots/panel.png").is_file()


def test_module_registers_its_self_test():
    text = (MODULE / "CMakeLists.txt").read_text()
    assert re.search(r"if\(BUILD_TESTING\).*slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\).*endif\(\)", text, re.S)
    assert "class ScarEnhanceTest(ScriptedLoadableModuleTest)" in (MODULE / "ScarEnhance.py").read_text()


@pytest.mark.parametrize("module", extension_modules())
def test_cmake_lists_every_file_of_the_module(module):
    """The built extension carries exactly the listed files: a file missing from the list is missing
    from every installed copy of the extension (the engine's files and the shipped models included)."""
    problems = check_module(ROOT / module)
    assert not problems, "\n".join(problems) + f"\nRegenerate the lists: python Testing/slicer_module/cmake_lists.py {module}"


def test_the_engine_and_models_are_part_of_the_module_lists():
    scripts, resources = listed_files(MODULE / "CMakeLists.txt")
    assert {"ScarEnhance.py", "scarenhance/__init__.py", "scarenhance/cli.py"} <= scripts
    assert {"Resources/UI/ScarEnhance.ui", "Resources/Icons/ScarEnhance.png"} <= resources
    shipped = MODULE / "scarenhance" / "models"
    for path in shipped.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.relative_to(MODULE).as_posix() in resources | scripts


def _mini_module(folder: Path) -> Path:
    """A module folder in which every file is listed."""
    for rel in ("Mini.py", "MiniLib/__init__.py", "engine/core.py", "Resources/UI/Mini.ui", "engine/models/registry.json"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text("x")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "Mini.cpython-311.pyc").write_text("ignored")
    (folder / "CMakeLists.txt").write_text(
        "set(MODULE_NAME Mini)\nset(MODULE_PYTHON_SCRIPTS\n  ${MODULE_NAME}.py\n  MiniLib/__init__.py\n  engine/core.py\n  )\n"
        "set(MODULE_PYTHON_RESOURCES\n  Resources/UI/${MODULE_NAME}.ui  # the panel\n  engine/models/registry.json\n  )\n")
    return folder


def test_the_cmake_checker_catches_missing_and_stale_entries(tmp_path):
    mini = _mini_module(tmp_path / "Mini")
    assert check_module(mini) == []
    cmake = mini / "CMakeLists.txt"
    cmake.write_text(cmake.read_text().replace("  engine/core.py\n", ""))
    assert check_module(mini) == [f"{cmake}: MODULE_PYTHON_SCRIPTS lacks engine/core.py"]
    (mini / "Resources" / "Icons").mkdir()
    (mini / "Resources" / "Icons" / "Mini.png").write_text("png")
    assert f"{cmake}: MODULE_PYTHON_RESOURCES lacks Resources/Icons/Mini.png" in check_module(mini)
    (mini / "engine" / "models" / "registry.json").unlink()
    assert f"{cmake}: lists engine/models/registry.json, which does not exist" in check_module(mini)


def test_the_checker_fails_on_a_copy_of_the_real_list_with_one_file_removed(tmp_path):
    """The same check on the real module, with one engine file taken out of a copy of its CMakeLists."""
    copy = tmp_path / "ScarEnhance"
    copy.mkdir()
    shutil.copy(MODULE / "CMakeLists.txt", copy / "CMakeLists.txt")
    scripts, resources = module_files(MODULE)
    for rel in scripts | resources:  # the module's files, as empty stand-ins (weights can be large)
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).touch()
    text = (copy / "CMakeLists.txt").read_text()
    assert "  scarenhance/cli.py\n" in text
    (copy / "CMakeLists.txt").write_text(text.replace("  scarenhance/cli.py\n", ""))
    assert f"{copy / 'CMakeLists.txt'}: MODULE_PYTHON_SCRIPTS lacks scarenhance/cli.py" in check_module(copy)


def test_slicer_requirements_agree_with_pyproject():
    """Resources/requirements.txt (what the first-use install adds to Slicer) uses pyproject's specifiers."""
    from packaging.requirements import Requirement

    from ScarEnhanceLib.InstallLogic import PROTECTED, loadRequirements

    project = {Requirement(r).name.lower(): Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for req in loadRequirements():
        assert req.name.lower() in project, f"{req.name} is not a dependency in pyproject.toml"
        assert req.specifier == project[req.name.lower()].specifier, f"{req.name}: {req.specifier} vs pyproject {project[req.name.lower()].specifier}"
        assert req.name not in PROTECTED  # Slicer's own builds are never pip-installed


# A stand-in for Slicer's CMake package: the same macros, which check that every listed file exists and
# record what the real ones would build and register.
FAKE_SLICER_VERSION = r"""
set(PACKAGE_VERSION "@VERSION@")
if("${PACKAGE_VERSION}" VERSION_LESS "${PACKAGE_FIND_VERSION}")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
"""

FAKE_SLICER_CONFIG = r"""
set(Slicer_USE_FILE "${CMAKE_CURRENT_LIST_DIR}/empty.cmake")
set(Slicer_EXTENSION_GENERATE_CONFIG "${CMAKE_CURRENT_LIST_DIR}/empty.cmake")
set(Slicer_EXTENSION_CPACK "${CMAKE_CURRENT_LIST_DIR}/empty.cmake")
set(RECORD "${CMAKE_CURRENT_LIST_DIR}/record.txt")
file(WRITE "${RECORD}" "")
function(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(M "WITH_GENERIC_TESTS" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  foreach(f IN LISTS M_SCRIPTS M_RESOURCES)
    if(NOT EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${f}")
      message(FATAL_ERROR "${M_NAME}: listed file ${f} does not exist")
    endif()
  endforeach()
  list(LENGTH M_SCRIPTS n_scripts)
  list(LENGTH M_RESOURCES n_resources)
  file(APPEND "${RECORD}" "module ${M_NAME} ${n_scripts} ${n_resources}\n")
endfunction()
function(slicer_add_python_unittest)
  cmake_parse_arguments(T "" "SCRIPT" "" ${ARGN})
  file(APPEND "${RECORD}" "unittest ${T_SCRIPT}\n")
endfunction()
"""


def fake_slicer(folder: Path, version: str) -> Path:
    """A stand-in Slicer build tree of this version (SlicerConfig.cmake + SlicerConfigVersion.cmake)."""
    folder.mkdir()
    (folder / "SlicerConfig.cmake").write_text(FAKE_SLICER_CONFIG)
    (folder / "SlicerConfigVersion.cmake").write_text(FAKE_SLICER_VERSION.replace("@VERSION@", version))
    (folder / "empty.cmake").write_text("")
    return folder


def configure(tmp_path: Path, fake: Path):
    import subprocess

    return subprocess.run(["cmake", "-S", str(ROOT), "-B", str(tmp_path / f"build-{fake.name}"), f"-DSlicer_DIR={fake}", "-DBUILD_TESTING=ON"],
                          capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs the cmake program")
def test_the_extension_does_not_configure_against_slicer_5_8(tmp_path):
    result = configure(tmp_path, fake_slicer(tmp_path / "Slicer-5.8", "5.8.1"))
    assert result.returncode != 0 and "5.10" in result.stderr


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs the cmake program")
def test_the_extension_configures_with_cmake(tmp_path):
    fake = fake_slicer(tmp_path / "Slicer", "5.12.2")
    result = configure(tmp_path, fake)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = (fake / "record.txt").read_text().splitlines()
    modules = {line.split()[1]: line.split()[2:] for line in record if line.startswith("module ")}
    assert set(modules) == {"ScarEnhance", "ScarEnhanceTraining"}
    scripts, resources = listed_files(MODULE / "CMakeLists.txt")
    assert modules["ScarEnhance"] == [str(len(scripts)), str(len(resources))]
    assert "unittest ScarEnhance.py" in record
