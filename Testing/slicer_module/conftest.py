"""Fixtures for the Slicer module's tests: Slicer's real MRML scene (slicer-core), no application.

`scene` builds a scene the way Slicer's application does (see mrml_scene.py) and makes it
`slicer.mrmlScene`; `fake_python` is a stand-in for PythonSlicer whose `-m scarenhance.cli` is a
small scripted engine, for testing failures, cancellation and fallbacks in a second, not minutes.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "ScarEnhance"
HERE = Path(__file__).resolve().parent
for path in (MODULE_DIR, HERE):  # `import ScarEnhanceLib` as Slicer would (the module folder is on sys.path)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture
def scene():
    from mrml_scene import SlicerCoreScene

    core = SlicerCoreScene().install()
    yield core.scene
    core.uninstall()


@pytest.fixture
def fake_python(tmp_path):
    """An executable that runs HERE/fake_engine.py for `-m scarenhance.cli ARGS` (FAKE_ENGINE_MODE picks
    its behaviour: ok, fail, oom, slow, bad-geometry)."""
    exe = tmp_path / "fake-python"
    exe.write_text(f"#!{sys.executable}\nimport runpy, sys\nsys.argv = [{str(HERE / 'fake_engine.py')!r}] + sys.argv[3:]\n"
                   f"runpy.run_path(sys.argv[0], run_name='__main__')\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


@pytest.fixture
def engine_mode(monkeypatch):
    def set_mode(mode: str):
        monkeypatch.setenv("FAKE_ENGINE_MODE", mode)
    set_mode("ok")
    return set_mode


@pytest.fixture
def phantom_volume(scene, tmp_path):
    """A small synthetic LGE case loaded as Slicer loads a file (archetype storage), named "LGE"."""
    import SimpleITK as sitk
    import slicer

    from scarenhance.phantom import generate_case

    path = tmp_path / "lge.nrrd"
    sitk.WriteImage(generate_case(3, n_slices=3, size=(192, 192)).image, str(path))
    node = slicer.modules.volumes.logic().AddArchetypeVolume(str(path), "LGE")
    assert node is not None and node.GetImageData() is not None
    node.GetDisplayNode().SetAutoWindowLevel(False)
    node.GetDisplayNode().SetWindowLevel(900, 400)
    return node


@pytest.fixture
def fake_registry(tmp_path):
    """A ModelRegistry with one shipped model of each kind (registry.json + folders) and an empty user folder."""
    import hashlib
    import json

    from model_folders import make_model_folder
    from ScarEnhanceLib.ModelRegistry import DIFFUSION, SEGMENTATION, ModelRegistry

    shipped = tmp_path / "shipped"
    entries = []
    for kind, name in ((SEGMENTATION, "heart-unet-demo"), (DIFFUSION, "scar-ddpm-demo")):
        make_model_folder(shipped / name, kind, payload=name.encode())
        entries.append({"id": name, "kind": kind, "version": "1.0", "description": f"demo {kind}", "folder": name,
                        "sha256": hashlib.sha256(name.encode()).hexdigest(), "url": None, "default": True})
    (shipped / "registry.json").write_text(json.dumps({"models": entries}))
    return ModelRegistry(userDir=tmp_path / "user-models", shippedRegistry=shipped / "registry.json")
