"""Does a scripted module's CMakeLists.txt list every file the built extension must carry?

slicerMacroBuildScriptedModule copies only the files named in MODULE_PYTHON_SCRIPTS and
MODULE_PYTHON_RESOURCES into the extension package; a file missing there works in a source checkout
and is absent from the installed extension. Expected: every .py file of the module folder (the engine
package included) as a script, every other file (UI, icons, requirements, model registry and
weights) as a resource, except build/test scaffolding.

    python Testing/slicer_module/cmake_lists.py ScarEnhance   # prints both lists, ready to paste
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_PARTS = {"__pycache__", "Testing", ".pytest_cache"}  # Testing/: registered by its own CMakeLists
SKIP_NAMES = {"CMakeLists.txt", ".gitignore", ".DS_Store"}


def module_files(module_dir: Path) -> tuple[set[str], set[str]]:
    """(scripts, resources) the module must list, as paths relative to the module folder."""
    module_dir = Path(module_dir)
    scripts, resources = set(), set()
    for rel in _candidate_files(module_dir):
        parts = Path(rel).parts
        if SKIP_PARTS & set(parts) or any(p.endswith(".egg-info") for p in parts) or Path(rel).name in SKIP_NAMES:
            continue
        if rel.endswith((".pyc", ".pyo")):
            continue
        (scripts if rel.endswith(".py") else resources).add(rel)
    return scripts, resources


def _candidate_files(module_dir: Path) -> list[str]:
    """Files git would commit (ignored build outputs left out); every file outside a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "."],
                             cwd=module_dir, capture_output=True, text=True, check=True).stdout
        return [l for l in out.splitlines() if l and (module_dir / l).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p.relative_to(module_dir).as_posix() for p in module_dir.rglob("*") if p.is_file()]


def listed_files(cmake_path: Path) -> tuple[set[str], set[str]]:
    """(scripts, resources) named in `set(MODULE_PYTHON_SCRIPTS …)` and `set(MODULE_PYTHON_RESOURCES …)`."""
    text = re.sub(r"#[^\n]*", "", Path(cmake_path).read_text())  # comments out
    name = re.search(r"set\(\s*MODULE_NAME\s+(\S+?)\s*\)", text)
    variables = {"MODULE_NAME": name.group(1)} if name else {}

    def block(var: str) -> set[str]:
        match = re.search(rf"set\(\s*{var}\s+(.*?)\)", text, re.S)
        if not match:
            return set()
        items = match.group(1).split()
        return {re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), i).strip('"') for i in items}

    return block("MODULE_PYTHON_SCRIPTS"), block("MODULE_PYTHON_RESOURCES")


def check_module(module_dir: Path) -> list[str]:
    """Problems, one line each: files the CMakeLists misses, and names it lists that do not exist."""
    module_dir = Path(module_dir)
    cmake = module_dir / "CMakeLists.txt"
    if not cmake.is_file():
        return [f"{cmake}: missing"]
    want_scripts, want_resources = module_files(module_dir)
    have_scripts, have_resources = listed_files(cmake)
    problems = [f"{cmake}: MODULE_PYTHON_SCRIPTS lacks {f}" for f in sorted(want_scripts - have_scripts)]
    problems += [f"{cmake}: MODULE_PYTHON_RESOURCES lacks {f}" for f in sorted(want_resources - have_resources)]
    problems += [f"{cmake}: lists {f}, which does not exist" for f in sorted((have_scripts | have_resources) - want_scripts - want_resources)
                 if not (module_dir / f).is_file()]
    return problems


def print_lists(module_dir: Path) -> None:
    name = Path(module_dir).name
    scripts, resources = module_files(module_dir)
    for var, files in (("MODULE_PYTHON_SCRIPTS", scripts), ("MODULE_PYTHON_RESOURCES", resources)):
        print(f"set({var}")
        for f in sorted(files):
            print(f"  {f.replace(name + '.py', '${MODULE_NAME}.py', 1) if f == name + '.py' else f}")
        print("  )\n")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print_lists(ROOT / arg)
