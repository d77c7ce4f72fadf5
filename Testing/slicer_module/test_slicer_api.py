"""The Slicer API contract: every slicer.*, qt.*, ctk.* name the Slicer side uses exists in Slicer.

Names slicer-core can import are checked there (Slicer's real MRML, logics and slicer/util.py);
the rest are in slicer_api_reviewed.py, each with the Slicer source file that defines it."""

from __future__ import annotations

import ast
import re

import pytest
import slicer

from slicer_api import in_slicer_core, slicer_side_files, used_names
from slicer_api_reviewed import FORBIDDEN, INDIRECT, REVIEWED


@pytest.fixture(scope="module")
def names():
    return used_names()


def test_the_scan_finds_what_the_code_uses(names):
    """A scan that found nothing would pass everything: a few names every panel needs."""
    for name in ("slicer.util.loadUI", "slicer.app.temporaryPath", "qt.QTimer", "ctk.ctkPathLineEdit",
                 "slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode", "slicer.i18n.tr"):
        assert name in names, name
    assert len(names) > 50


def test_every_name_exists_in_slicer_core_or_was_reviewed(names):
    unknown = {n: sorted(files) for n, files in names.items() if not in_slicer_core(n) and n not in REVIEWED}
    assert not unknown, ("used, but neither in slicer-core nor reviewed (read Slicer's source, then add the name and "
                         f"its defining file to slicer_api_reviewed.py): {unknown}")


def test_the_reviewed_list_holds_only_what_slicer_core_cannot_check_and_the_code_uses(names):
    checkable = [n for n in REVIEWED if in_slicer_core(n)]
    assert not checkable, f"slicer-core can check these itself; remove them from REVIEWED: {checkable}"
    stale = sorted(set(REVIEWED) - set(names))
    assert not stale, f"no longer used; remove from REVIEWED: {stale}"
    assert all(REVIEWED.values())


def test_the_checker_tells_a_real_name_from_a_made_up_one():
    assert in_slicer_core("slicer.util.arrayFromVolume") and in_slicer_core("slicer.mrmlScene.GetFirstNodeByClass")
    assert not in_slicer_core("slicer.util.arrayFromVolumeFast")
    assert not in_slicer_core("slicer.pydeps.pip_ensure")
    assert not in_slicer_core("slicer.vtkMRMLSegmentationNode.SetSegmentName")


def code_text() -> str:
    """The Slicer side's code without comments and docstrings."""
    out = []
    for path in slicer_side_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node):
                node.body = node.body[1:] or [ast.Pass()]
        out.append(ast.unparse(tree))
    return "\n".join(out)


def test_indirect_methods_exist_and_are_used():
    code = code_text()
    for method, owner, source in INDIRECT:
        assert re.search(rf"\b{method}\b", code), f"{owner}.{method} is in INDIRECT but not used: remove it"
        cls = getattr(slicer, owner, None)
        if cls is not None and owner.startswith("vtk"):
            assert hasattr(cls, method), f"slicer-core's {owner} has no {method} ({source})"
        else:
            assert source, f"{owner}.{method}: name the Slicer source file that defines it"


def test_none_of_the_issue_14_calls_come_back():
    code = code_text()
    for call, why in FORBIDDEN.items():
        assert not re.search(rf"\b{call}\b", code), f"{call}: {why}"
