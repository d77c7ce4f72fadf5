"""Every slicer.*, qt.* and ctk.* name the Slicer side uses, and whether slicer-core can show it exists.

    python Testing/slicer_module/slicer_api.py     # lists each name: "core" or the reviewed source file

A name is a dotted chain read from the code: `slicer.util.arrayFromVolume`, `qt.Qt.ToolTipRole`,
`slicer.app.temporaryPath`, `from slicer.i18n import tr` → `slicer.i18n.tr`. A chain stops at a call
(`slicer.app.extensionsManagerModel().installExtensionFromServer` → `slicer.app.extensionsManagerModel`;
what is called on the result is a method of a Slicer class, reviewed in slicer_api_reviewed.py's
INDIRECT list). Names on `slicer.mrmlScene` are looked up on vtkMRMLScene. slicer-core has Slicer's
real MRML, logic and util code but no application, modules, Qt or CTK: those names are in the reviewed
list, each with the Slicer source file that defines it.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOTS = ("slicer", "qt", "ctk")
NOT_IN_CORE = ("slicer.app", "slicer.modules", "qt.", "ctk.", "slicer.qMRML", "slicer.qSlicer", "slicer.ScriptedLoadableModule",
               "slicer.parameterNodeWrapper", "slicer.i18n", "slicer.packaging", "slicer.selfTests")


def slicer_side_files() -> list[Path]:
    """The code that runs inside Slicer: both module shells and their Lib folders (not the engine)."""
    files = [ROOT / "ScarEnhance" / "ScarEnhance.py", *sorted((ROOT / "ScarEnhance" / "ScarEnhanceLib").glob("*.py"))]
    files += sorted((ROOT / "ScarEnhanceTraining").rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


def _chain(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def used_names(files: list[Path] | None = None) -> dict[str, set[str]]:
    """{dotted name: {files using it}}, for roots slicer, qt and ctk."""
    found: dict[str, set[str]] = {}

    def add(name: str, path: Path):
        found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())

    for path in files or slicer_side_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ROOTS:
                for alias in node.names:
                    add(f"{node.module}.{alias.name}", path)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in ROOTS and "." in alias.name:
                        add(alias.name, path)
            elif isinstance(node, ast.Attribute) and not isinstance(parents.get(node), ast.Attribute):
                chain = _chain(node)
                if chain and chain[0] in ROOTS:
                    add(".".join(chain), path)
    return found


def in_slicer_core(name: str) -> bool:
    """True when slicer-core (Slicer's MRML, logics and util without the application) defines `name`."""
    if name.startswith(NOT_IN_CORE) or name.split(".")[0] != "slicer" or name == "slicer.mrmlScene":
        return False  # (slicer.mrmlScene exists only once a test or the application has set it)
    if name.startswith("slicer.mrmlScene."):
        name = "slicer.vtkMRMLScene." + name[len("slicer.mrmlScene."):]
    parts = name.split(".")
    obj = importlib.import_module("slicer")
    for i, part in enumerate(parts[1:], start=2):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            return False
    return True


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "ScarEnhance"))
    from slicer_api_reviewed import REVIEWED

    for name, files in sorted(used_names().items()):
        where = "core" if in_slicer_core(name) else REVIEWED.get(name, "NOT REVIEWED")
        print(f"{name:70s} {where}")
