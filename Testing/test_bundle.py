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


# ---- configs are data; the registry digest covers the whole folder --------------------------------


@pytest.mark.parametrize("file, change, key", [
    ("inference", lambda c: c["network_def"].update(spatial_dims="$__import__('os').getcwd() or 2"), "network_def.spatial_dims"),
    ("inference", lambda c: c["network_def"].update(channels=["@network_def#strides", 8]), "network_def.channels[0]"),
    ("inference", lambda c: c["network_def"].update(norm={"_target_": "torch.nn.Identity"}), "network_def.norm._target_"),
    ("inference", lambda c: c.update(device="cpu"), "device"),
    ("inference", lambda c: c["network_def"].update(channels=[4, 10**9]), "network_def.channels"),
    ("inference", lambda c: c["network_def"].update(in_channels=True), "network_def.in_channels"),
    ("inference", lambda c: c["network_def"].update(act_fn="relu"), "network_def.act_fn"),
    ("metadata", lambda m: m.update(notes="%configs/other.json#x"), "notes"),
    ("metadata", lambda m: m["scarenhance"].update(hooks=[{"_requires_": "x"}]), "scarenhance.hooks[0]._requires_"),
])
def test_configs_holding_code_or_unknown_arguments_are_refused_naming_file_and_key(model_dir, file, change, key):
    path = model_dir / (INFERENCE if file == "inference" else METADATA)
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))
    with pytest.raises(ModelError) as err:
        load_bundle(model_dir)
    assert str(err.value).startswith(str(path)) and repr(key) in str(err.value)


def test_json_that_parsers_read_differently_is_refused(model_dir):
    text = (model_dir / INFERENCE).read_text()
    (model_dir / INFERENCE).write_text(text.replace('"spatial_dims": 2', '"spatial_dims": 2, "spatial_dims": 3'))
    with pytest.raises(ModelError, match="'spatial_dims' appears twice"):
        read_metadata(model_dir)
    (model_dir / INFERENCE).write_text(text.replace('"num_res_units": 0', '"num_res_units": NaN'))
    with pytest.raises(ModelError, match="NaN is not a JSON number"):
        read_metadata(model_dir)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickled_object_as_weights_is_refused_and_never_runs(model_dir, tmp_path):
    import pickle

    class Payload:  # what an attacker pickles: unpickling would call Path.touch
        def __reduce__(self):
            from pathlib import Path
            return (Path.touch, (Path(tmp_path / "pwned"),))

    (model_dir / WEIGHTS).write_bytes(pickle.dumps({"weight": Payload()}))
    meta = json.loads((model_dir / METADATA).read_text())
    meta["scarenhance"]["weights_sha256"] = sha256_file(model_dir / WEIGHTS)  # the attacker's checksum matches
    (model_dir / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="not a plain state dict") as err:
        load_bundle(model_dir)
    assert str(err.value).startswith(str(model_dir / WEIGHTS)) and not (tmp_path / "pwned").exists()


def test_folder_digest_covers_configs_and_weights_and_equals_the_shell_one_liner(model_dir):
    import subprocess

    from scarenhance.bundle import folder_digest

    digest = folder_digest(model_dir)
    shell = subprocess.run("LC_ALL=C sha256sum configs/*.json models/model.pt | sha256sum", shell=True, cwd=model_dir,
                           capture_output=True, text=True, check=True).stdout.split()[0]
    assert digest == shell
    (model_dir / "README.md").write_text("docs are not covered")
    assert folder_digest(model_dir) == digest
    config = model_dir / INFERENCE
    config.write_text(config.read_text() + " ")  # one byte more in a config changes the digest
    assert folder_digest(model_dir) != digest


def _registry(tmp_path, entry: dict):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"models": [{"id": "m", "kind": "heart-segmentation", "version": "1", **entry}]}))
    return path


def test_registry_checks_the_folder_digest_and_old_weights_only_entries(model_dir, tmp_path, monkeypatch):
    import scarenhance.model_zoo as zoo
    from scarenhance.bundle import folder_digest

    monkeypatch.setattr(zoo, "REGISTRY", _registry(tmp_path, {"folder": "m", "folder_sha256": folder_digest(model_dir)}))
    assert resolve_model("m", "heart-segmentation") == tmp_path / "m"
    meta = json.loads((model_dir / METADATA).read_text())
    meta["description"] = "changed after registration"
    (model_dir / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="does not match the model registry"):
        resolve_model("m", "heart-segmentation")
    # an older registry recorded the weights' SHA-256 only: still accepted, checked against the weights
    monkeypatch.setattr(zoo, "REGISTRY", _registry(tmp_path, {"folder": "m", "sha256": sha256_file(model_dir / WEIGHTS)}))
    assert resolve_model("m", "heart-segmentation") == tmp_path / "m"
    monkeypatch.setattr(zoo, "REGISTRY", _registry(tmp_path, {"folder": "m", "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="its weights"):
        resolve_model("m", "heart-segmentation")


@pytest.mark.parametrize("folder", ["../m", "/etc", "link"])
def test_a_registry_entry_pointing_outside_its_folder_is_refused(model_dir, tmp_path, monkeypatch, folder):
    import scarenhance.model_zoo as zoo

    (tmp_path / "reg").mkdir()
    (tmp_path / "reg" / "link").symlink_to(model_dir)
    monkeypatch.setattr(zoo, "REGISTRY", _registry(tmp_path / "reg", {"folder": folder, "folder_sha256": "0" * 64}))
    with pytest.raises(ModelError, match="points outside"):
        resolve_model("m", "heart-segmentation")


def test_digest_command_prints_what_the_registry_records(model_dir, capsys):
    from scarenhance.bundle import folder_digest
    from scarenhance.model_zoo import REGISTRY, entry_folder, main, registry_entries

    assert main(["digest", str(model_dir)]) == 0
    assert capsys.readouterr().out.split() == [folder_digest(model_dir), str(model_dir)]
    for entry in registry_entries():  # the shipped registry is up to date with the shipped folders
        assert entry["folder_sha256"] == folder_digest(entry_folder(entry, REGISTRY)), entry["id"]
