"""Model folders: layout, checksum, refusal of foreign code, model resolution and install."""

import json
import shutil
import tarfile

import pytest
import torch

from scarenhance.bundle import (
    INFERENCE,
    METADATA,
    WEIGHTS,
    atomic_torch_save,
    load_bundle,
    read_metadata,
    save_bundle,
    sha256_file,
)
from scarenhance.errors import ModelError
from scarenhance.model_zoo import fetch_model, resolve_model
from scarenhance.progress import format_progress, parse_progress

NET = {"_target_": "monai.networks.nets.UNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
       "channels": [4, 8], "strides": [2], "num_res_units": 0}


@pytest.fixture
def model_dir(tmp_path):
    from scarenhance.bundle import build_network

    net = build_network(NET)
    return save_bundle(tmp_path / "m", net, NET, {"version": "0.0.1", "scarenhance": {"kind": "heart-segmentation"}})


def test_saved_bundle_has_monai_layout_and_loads_the_same_weights(model_dir):
    for rel in (METADATA, INFERENCE, WEIGHTS):
        assert (model_dir / rel).is_file()
    meta = read_metadata(model_dir)
    assert meta["scarenhance"]["weights_sha256"] == sha256_file(model_dir / WEIGHTS)
    net, meta = load_bundle(model_dir, kind="heart-segmentation")
    assert not net.training
    state = torch.load(model_dir / WEIGHTS, weights_only=True)
    for name, value in net.state_dict().items():
        assert torch.equal(value, state[name])


def test_truncated_weights_are_a_checksum_error_naming_the_file(model_dir):
    data = (model_dir / WEIGHTS).read_bytes()
    (model_dir / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="checksum mismatch") as err:
        load_bundle(model_dir)
    assert "model.pt" in str(err.value)


def test_wrong_kind_missing_files_and_foreign_targets_are_refused(model_dir, tmp_path):
    with pytest.raises(ModelError, match="scar-diffusion"):
        load_bundle(model_dir, kind="scar-diffusion")
    with pytest.raises(ModelError, match="metadata.json is missing"):
        load_bundle(tmp_path)
    config = json.loads((model_dir / INFERENCE).read_text())
    config["network_def"]["_target_"] = "os.system"
    (model_dir / INFERENCE).write_text(json.dumps(config))
    with pytest.raises(ModelError, match="not allowed"):
        load_bundle(model_dir)


def test_weights_that_do_not_fit_the_network_are_a_model_error(model_dir):
    meta = json.loads((model_dir / METADATA).read_text())
    atomic_torch_save({"bogus": torch.zeros(1)}, model_dir / WEIGHTS)
    meta["scarenhance"]["weights_sha256"] = sha256_file(model_dir / WEIGHTS)
    (model_dir / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="do not fit"):
        load_bundle(model_dir)


def test_fetch_installs_from_a_local_archive_and_checks_its_sha(model_dir, tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model_dir, arcname="my-model")
    with pytest.raises(ModelError, match="SHA-256"):
        fetch_model(str(archive), tmp_path / "store", sha256="0" * 64)
    installed = fetch_model(str(archive), tmp_path / "store", sha256=sha256_file(archive))
    assert installed.name == "my-model"
    load_bundle(installed)
    with pytest.raises(ModelError, match="exists already"):
        fetch_model(str(shutil.copytree(model_dir, tmp_path / "my-model")), tmp_path / "store")
    assert resolve_model(installed, "heart-segmentation") == installed
    assert resolve_model("my-model", "heart-segmentation", search_dirs=[tmp_path / "store"]) == installed
    with pytest.raises(ModelError, match="no model folder"):
        resolve_model("nope", "heart-segmentation")


def test_progress_lines_round_trip():
    line = format_progress(0.4211, "reverse step 3/20")
    assert parse_progress(line) == (0.4211, "reverse step 3/20")
    assert parse_progress("some other output") is None
    assert parse_progress(format_progress(1.7, "x"))[0] == 1.0


def test_atomic_writes_get_the_permissions_of_an_ordinary_file(tmp_path):
    """mkstemp makes 0600 files; a shared model folder or report must follow the umask like any other file."""
    import os

    from scarenhance.bundle import atomic_write_bytes

    import SimpleITK as sitk

    from scarenhance.io import write_image

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.json", b"{}")
        write_image(sitk.Image(4, 4, 2, sitk.sitkInt16), tmp_path / "c.nii.gz")
        plain = tmp_path / "b.json"
        plain.write_bytes(b"{}")
    finally:
        os.umask(old)
    for name in ("a.json", "c.nii.gz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644, name
