"""What Slicer itself calls on the module shells and the panel, checked in their source (these classes
need Slicer's Qt to run): module logic for getModuleLogic, Segment Editor shortcuts only while shown,
help text naming the supported Slicer versions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELLS = {"ScarEnhance": ROOT / "ScarEnhance" / "ScarEnhance.py",
          "ScarEnhanceTraining": ROOT / "ScarEnhanceTraining" / "ScarEnhanceTraining.py"}
PANEL = ROOT / "ScarEnhance" / "ScarEnhanceLib" / "Widget.py"


def methods(path: Path, cls: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
    return {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}


def calls(function: ast.FunctionDef) -> list[str]:
    return [n.func.attr for n in ast.walk(function) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]


@pytest.mark.parametrize("module", SHELLS)
def test_the_widget_sets_the_logic_that_getModuleLogic_returns(module):
    """slicer.util.getModuleLogic(name) returns the widget's `logic` attribute and raises without it."""
    setup = methods(SHELLS[module], f"{module}Widget")["setup"]
    assigned = [t for n in ast.walk(setup) if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"]
    assert "logic" in {t.attr for t in assigned}, f"{module}Widget.setup never sets self.logic"


def test_segment_editor_shortcuts_exist_only_while_the_module_is_shown():
    """As SegmentEditor.py: install on enter; on exit uninstall them and drop the view observations.
    Installed anywhere else they stay when the module is left and clash with the Segment Editor's."""
    panel = methods(PANEL, "ScarEnhancePanel")
    installers = [name for name, f in panel.items() if "installKeyboardShortcuts" in calls(f)]
    assert installers == ["enter"]
    for name in ("exit", "cleanup"):
        assert {"uninstallKeyboardShortcuts", "removeViewObservations"} <= set(calls(panel[name])), name
    assert "removeViewObservations" in calls(panel["onSceneStartClose"])


def test_exit_only_disconnects_the_gui():
    """Slicer's template exit(): disconnect the GUI; the job and its parameter node stay (they land later)."""
    exit_calls = calls(methods(PANEL, "ScarEnhancePanel")["exit"])
    assert "cancel" not in exit_calls and "_disconnectGui" in exit_calls


@pytest.mark.parametrize("module", SHELLS)
def test_help_text_names_the_supported_slicer_versions(module):
    from ScarEnhanceLib.Compatibility import SUPPORTED_SLICER

    assert SUPPORTED_SLICER == "3D Slicer 5.10 or later (the 5.12 line included)"
    text = SHELLS[module].read_text(encoding="utf-8")
    assert "Supported: {supported}." in text and "SUPPORTED_SLICER" in text and "runningVersionProblem()" in text


def test_compatibility_imports_on_python_3_9():
    """The module that turns old Slicers away must itself parse as Python 3.9 (Slicer 5.6/5.8)."""
    source = (ROOT / "ScarEnhance" / "ScarEnhanceLib" / "Compatibility.py").read_text(encoding="utf-8")
    ast.parse(source, feature_version=(3, 9))
    assert "from __future__" not in source and " | " not in source.split('"""', 2)[2]
    shell = SHELLS["ScarEnhance"].read_text(encoding="utf-8")
    ast.parse(shell, feature_version=(3, 9))
