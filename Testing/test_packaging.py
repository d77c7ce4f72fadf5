"""A plain (non-editable) `pip install .` must give a working `scarenhance` command with the demo models,
and the command line must list every subcommand."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, cwd=out)
    (path,) = out.glob("scarenhance-*.whl")
    return path


def test_wheel_carries_engine_demo_models_and_console_script(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    registry = json.loads(zipfile.ZipFile(wheel).read("scarenhance/models/registry.json"))
    kinds = {entry["kind"] for entry in registry["models"] if entry.get("default")}
    assert kinds == {"heart-segmentation", "scar-diffusion"}
    for entry in registry["models"]:
        for rel in ("configs/metadata.json", "configs/inference.json", "models/model.pt"):
            assert f"scarenhance/models/{entry['folder']}/{rel}" in names
    assert not any(n.startswith(("ScarEnhanceLib", "Testing")) for n in names), "only the engine goes to pip"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "scarenhance = scarenhance.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_copy_finds_and_verifies_its_own_models(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True)
    code = ("import scarenhance, scarenhance.model_zoo as z, scarenhance.bundle as b;"
            "print(scarenhance.__file__);"
            "[b.load_bundle(z.resolve_model(None, kind), kind=kind) for kind in z.KINDS]")
    env = dict(os.environ, PYTHONPATH=str(target))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(target)), "the installed copy, not the checkout, was imported"


def test_help_lists_every_subcommand():
    from scarenhance.cli import COMMANDS

    done = subprocess.run([sys.executable, "-m", "scarenhance", "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in COMMANDS:
        assert name in done.stdout
