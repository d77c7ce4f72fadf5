"""Hostile and bad input, through the real command line (`scarenhance.cli.main`).

Every refusal must: exit with status 2, print one line `scarenhance CMD: error: FILE: problem` naming
the file and the problem, show no traceback, run no code from a model folder, create no file and
change none. What is accepted (a 2-slice stack, an ROI of 0/255, an ROI on a rotated grid, every
pixel type) is run and its promise checked: outside the ROI the output is the input, bit for bit.
Images are tiny and the shipped models run one fast step, so the module takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from scarenhance.bundle import INFERENCE, METADATA, WEIGHTS, folder_digest, sha256_file
from scarenhance.cli import main
from scarenhance.model_zoo import DIFFUSION, SEGMENTATION, default_model_id, registry_entries, resolve_model

FAST = ["--lam", "5", "--k", "1", "--steps", "1", "--seed", "0", "--device", "cpu"]


# ---- helpers ----------------------------------------------------------------------------------------
def _lge(shape=(3, 48, 48), dtype=np.int16, lo=20, hi=900, seed=0) -> sitk.Image:
    """Noisy oblique volume (numpy z, y, x), slices along z (largest spacing)."""
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        array = rng.integers(lo, hi, size=shape, dtype=np.int64 if np.dtype(dtype).kind == "i" else np.uint64)
    else:
        array = rng.uniform(lo, hi, size=shape)
    image = sitk.GetImageFromArray(array.astype(dtype))
    image.SetSpacing((1.25, 1.25, 8.0))
    image.SetOrigin((-30.0, 12.5, 4.0))
    c, s = np.cos(0.5), np.sin(0.5)
    image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    return image


def _roi(image: sitk.Image, value: int = 1) -> sitk.Image:
    array = np.zeros(image.GetSize()[::-1], np.uint8)
    array[:, 18:30, 16:30] = value
    roi = sitk.GetImageFromArray(array)
    roi.CopyInformation(image)
    return roi


def _write(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path))
    return path


def _snapshot(root: Path) -> dict:
    """Every file and link under root: its content's SHA-256, or where a link points."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                state[path] = "link→" + os.readlink(path)
            elif path.is_file():
                state[path] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                state[path] = "dir"
    return state


def _refused(argv: list, capsys, root: Path, names: "str | Path", *problems: str) -> str:
    """Run the CLI; assert it refused with one clear line naming `names` and each of `problems`, and that
    nothing under root appeared or changed. Returns the message."""
    before = _snapshot(root)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}; stdout {out!r}; stderr {err!r}"
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"scarenhance {argv[0]}: error: "), err
    message = lines[0]
    assert str(names) in message, message
    for problem in problems:
        assert problem in message, message
    assert _snapshot(root) == before, "a file appeared or changed"
    return message


def _accepted(argv: list, capsys) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err and "PROGRESS" not in err  # a pipe gets no progress unless asked
    return out


@pytest.fixture
def case(tmp_path):
    """lge.nrrd + roi.nrrd in tmp_path."""
    image = _lge()
    return _write(image, tmp_path / "lge.nrrd"), _write(_roi(image), tmp_path / "roi.nrrd")


def _model_copy(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / f"{kind}-copy"
    shutil.copytree(resolve_model(None, kind), folder)
    return folder


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# ---- model folders are data ------------------------------------------------------------------------
@pytest.mark.parametrize("file, change, key", [
    # the issue's attack: a MONAI expression that would create a file, then segment normally
    (INFERENCE, lambda c: c["network_def"].update(spatial_dims="$__import__('pathlib').Path('pwned').touch() or 2"),
     "network_def.spatial_dims"),
    (INFERENCE, lambda c: c["network_def"].update(channels="@network_def#strides"), "network_def.channels"),
    (METADATA, lambda m: m["scarenhance"]["input"].update(spacing_mm="%configs/other.json#spacing"),
     "scarenhance.input.spacing_mm"),
    (INFERENCE, lambda c: c["network_def"].update(act={"_target_": "builtins.eval", "source": "1"}), "network_def.act._target_"),
    (INFERENCE, lambda c: c["network_def"].update(_target_="monai.networks.nets.ViT"), "network_def._target_"),
    (INFERENCE, lambda c: c["network_def"].update(channels=[16, 32, 64, 128, 10 ** 8]), "network_def.channels"),
])
def test_a_model_folder_holding_code_is_refused_and_nothing_runs(tmp_path, case, capsys, monkeypatch, file, change, key):
    monkeypatch.chdir(tmp_path)  # where the issue's payload would have written 'pwned'
    model = _model_copy(tmp_path, SEGMENTATION)
    _edit_json(model / file, change)
    _refused(["segment", "--input", case[0], "--output", tmp_path / "mask.nrrd", "--model", model, "--device", "cpu"],
             capsys, tmp_path, model / file, repr(key))
    assert not (tmp_path / "pwned").exists()


def test_an_extra_config_with_an_expression_is_refused_too(tmp_path, case, capsys):
    """MONAI tools would read configs/*.json; the engine checks every one, not only the two it reads."""
    model = _model_copy(tmp_path, SEGMENTATION)
    (model / "configs" / "train.json").write_text(json.dumps({"trainer": {"max_epochs": "$print('hi') or 3"}}))
    _refused(["segment", "--input", case[0], "--output", tmp_path / "mask.nrrd", "--model", model],
             capsys, tmp_path, model / "configs" / "train.json", "'trainer.max_epochs'", "MONAI expression")


class _Touch:
    """A pickled object whose unpickling would create a file (what a hostile model.pt does)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickled_object_as_weights_is_refused_and_never_unpickled(tmp_path, case, capsys):
    model = _model_copy(tmp_path, SEGMENTATION)
    (model / WEIGHTS).write_bytes(pickle.dumps({"model.0.conv.weight": _Touch(tmp_path / "pwned")}))
    _edit_json(model / METADATA, lambda m: m["scarenhance"].update(weights_sha256=sha256_file(model / WEIGHTS)))
    _refused(["segment", "--input", case[0], "--output", tmp_path / "mask.nrrd", "--model", model],
             capsys, tmp_path, model / WEIGHTS, "not a plain state dict")
    assert not (tmp_path / "pwned").exists()


def test_a_whole_pickled_network_instead_of_a_state_dict_is_refused(tmp_path, case, capsys):
    import torch

    model = _model_copy(tmp_path, SEGMENTATION)
    torch.save(torch.nn.Linear(2, 2), model / WEIGHTS)  # torch.save of a module pickles its class
    _edit_json(model / METADATA, lambda m: m["scarenhance"].update(weights_sha256=sha256_file(model / WEIGHTS)))
    _refused(["segment", "--input", case[0], "--output", tmp_path / "mask.nrrd", "--model", model],
             capsys, tmp_path, model / WEIGHTS, "not a plain state dict")


def test_a_model_folder_of_the_wrong_kind_is_refused(tmp_path, case, capsys):
    diffusion = resolve_model(None, DIFFUSION)
    _refused(["segment", "--input", case[0], "--output", tmp_path / "mask.nrrd", "--model", diffusion],
             capsys, tmp_path, diffusion / METADATA, "'scar-diffusion' model", "'heart-segmentation' model was expected")


def test_a_folder_that_is_not_a_model_is_refused(tmp_path, case, capsys):
    (tmp_path / "photos").mkdir()
    _refused(["enhance", "--input", case[0], "--roi", case[1], "--output", tmp_path / "out.nrrd",
              "--model", tmp_path / "photos", *FAST], capsys, tmp_path, tmp_path / "photos", "not a ScarEnhance model folder")


def _registry(tmp_path: Path, **entry) -> Path:
    path = tmp_path / "registry" / "registry.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"models": [{"id": "site-heart", "kind": SEGMENTATION, "version": "1", **entry}]}))
    return path


@pytest.mark.parametrize("folder", ["../elsewhere", "/etc"])
def test_a_registry_entry_pointing_outside_its_folder_is_refused(tmp_path, case, capsys, monkeypatch, folder):
    import scarenhance.model_zoo as zoo

    monkeypatch.setattr(zoo, "REGISTRY", _registry(tmp_path, folder=folder, folder_sha256="0" * 64))
    _refused(["segment", "--input", case[0], "--output", tmp_path / "mask.nrrd", "--model", "site-heart"],
             capsys, tmp_path, zoo.REGISTRY, "points outside")


def test_a_registered_model_whose_configs_changed_is_refused(tmp_path, case, capsys, monkeypatch):
    import scarenhance.model_zoo as zoo

    registry = _registry(tmp_path, folder="site-heart", folder_sha256=folder_digest(resolve_model(None, SEGMENTATION)))
    model = shutil.copytree(resolve_model(None, SEGMENTATION), registry.parent / "site-heart")
    _edit_json(model / INFERENCE, lambda c: c["network_def"].update(dropout=0.5))  # valid, but not what was registered
    monkeypatch.setattr(zoo, "REGISTRY", registry)
    _refused(["segment", "--input", case[0], "--output", tmp_path / "mask.nrrd", "--model", "site-heart"],
             capsys, tmp_path, model, "does not match the model registry")


def test_the_shipped_registry_matches_the_shipped_folders():
    for kind in (SEGMENTATION, DIFFUSION):
        entry = next(e for e in registry_entries() if e["id"] == default_model_id(kind))
        assert folder_digest(resolve_model(None, kind)) == entry["folder_sha256"]


# ---- every pixel type: the outside of the ROI is the input, bit for bit -------------------------------
@pytest.mark.parametrize("dtype, lo, hi, expected", [
    (np.uint8, 0, 255, np.float32),
    (np.int8, -128, 127, np.float32),
    (np.uint16, 0, 65535, np.float32),
    (np.int16, -2000, 4000, np.float32),
    (np.int32, -(1 << 20), 1 << 20, np.float32),
    (np.int32, (1 << 24) + 1, (1 << 31) - 1, np.float64),  # the issue's case: float32 would round these
    (np.uint32, 0, (1 << 32) - 1, np.float64),
    (np.int64, -(1 << 40), 1 << 40, np.float64),
    (np.int64, -(1 << 62), 1 << 62, np.int64),  # beyond float64's 53 bits: the input's own type
    (np.uint64, 1 << 63, (1 << 64) - 1, np.uint64),
    (np.float32, -3.5, 1e6, np.float32),
    (np.float64, -1e-3, 1e12, np.float64),
])
def test_outside_the_roi_every_pixel_type_comes_back_bit_for_bit(tmp_path, capsys, dtype, lo, hi, expected):
    image = _lge(dtype=dtype, lo=lo, hi=hi)
    ext = ".nii.gz" if dtype == np.int32 else ".nrrd"
    lge, roi = _write(image, tmp_path / f"lge{ext}"), _write(_roi(image), tmp_path / "roi.nrrd")
    _accepted(["enhance", "--input", lge, "--roi", roi, "--output", tmp_path / "out.nrrd", *FAST], capsys)
    out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out.nrrd")))
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(lge)))
    inside = sitk.GetArrayFromImage(sitk.ReadImage(str(roi))) != 0
    assert out.dtype == expected
    assert np.array_equal(out[~inside].astype(object), original[~inside].astype(object))  # exact, as Python ints/floats
    assert not np.array_equal(out[inside], original[inside].astype(out.dtype))  # and the ROI was enhanced


# ---- images ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext, bad", [(".nii.gz", np.nan), (".nii", np.inf), (".mha", np.nan)])
def test_nan_or_inf_is_refused_whatever_the_format(tmp_path, case, capsys, ext, bad):
    array = sitk.GetArrayFromImage(_lge(dtype=np.float32))
    array[1, 20, 20] = bad
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(_lge())
    lge = _write(image, tmp_path / f"nan{ext}")
    _refused(["enhance", "--input", lge, "--roi", case[1], "--output", tmp_path / "out.nrrd", *FAST],
             capsys, tmp_path, lge, "1 NaN or infinite voxels")


def test_a_4096_square_slice_is_refused_before_its_pixels_are_read(tmp_path, case, capsys):
    big = _write(sitk.Image(4096, 4096, 1, sitk.sitkUInt8), tmp_path / "big.nii.gz")
    _refused(["segment", "--input", big, "--output", tmp_path / "mask.nrrd"], capsys, tmp_path, big,
             "4096x4096x1 voxels is larger than ScarEnhance reads")


def test_a_one_voxel_image_is_refused(tmp_path, capsys):
    tiny = _write(sitk.Image(1, 1, 1, sitk.sitkInt16), tmp_path / "tiny.nrrd")
    _refused(["segment", "--input", tiny, "--output", tmp_path / "mask.nrrd"], capsys, tmp_path, tiny, "too small")


def test_a_label_file_given_as_the_image_is_refused(tmp_path, case, capsys):
    labels = np.zeros((3, 48, 48), np.uint8)
    labels[:, 10:30, 10:30], labels[:, 15:25, 15:25], labels[:, 18:20, 10:14] = 2, 1, 3
    lab = _write(sitk.GetImageFromArray(labels), tmp_path / "labels.nii.gz")
    _refused(["segment", "--input", lab, "--output", tmp_path / "mask.nrrd"], capsys, tmp_path, lab,
             "looks like a label map", "0, 1, 2, 3")
    _refused(["enhance", "--input", lab, "--roi", case[1], "--output", tmp_path / "out.nrrd", *FAST],
             capsys, tmp_path, lab, "looks like a label map")


def test_an_image_given_as_the_roi_is_refused(tmp_path, case, capsys):
    _refused(["enhance", "--input", case[0], "--roi", case[0], "--output", tmp_path / "out.nrrd", *FAST],
             capsys, tmp_path, case[0], "looks like an image, not a mask")


def test_a_2_slice_stack_is_segmented_and_enhanced(tmp_path, capsys):
    image = _lge(shape=(2, 64, 64))
    lge = _write(image, tmp_path / "lge.nrrd")
    _accepted(["segment", "--input", lge, "--output", tmp_path / "mask.nrrd", "--device", "cpu"], capsys)
    mask = sitk.ReadImage(str(tmp_path / "mask.nrrd"))
    assert mask.GetSize() == image.GetSize() and mask.GetDirection() == image.GetDirection()
    roi = _write(_roi(image), tmp_path / "roi.nrrd")
    _accepted(["enhance", "--input", lge, "--roi", roi, "--output", tmp_path / "out.nrrd", *FAST], capsys)
    assert sitk.ReadImage(str(tmp_path / "out.nrrd")).GetSize() == (64, 64, 2)


def test_an_roi_of_0_and_255_is_the_same_mask_as_0_and_1(tmp_path, case, capsys):
    roi255 = _write(_roi(_lge(), value=255), tmp_path / "roi255.nrrd")
    for roi, out in ((case[1], "out1.nrrd"), (roi255, "out255.nrrd")):
        _accepted(["enhance", "--input", case[0], "--roi", roi, "--output", tmp_path / out, *FAST], capsys)
    a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / n))) for n in ("out1.nrrd", "out255.nrrd"))
    assert np.array_equal(a, b)


def test_an_roi_on_a_rotated_grid_is_resampled_and_the_outside_is_kept(tmp_path, case, capsys):
    image = sitk.ReadImage(str(case[0]))
    rotated = sitk.Image(_roi(image))
    c, s = np.cos(0.9), np.sin(0.9)  # another in-plane rotation than the image's, same centre
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    rotated.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    rotated.SetOrigin(tuple(np.array(centre) - np.array(rotated.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2 for n in image.GetSize()])) + np.array(rotated.GetOrigin())))
    roi = _write(rotated, tmp_path / "rotated_roi.nrrd")
    _accepted(["enhance", "--input", case[0], "--roi", roi, "--output", tmp_path / "out.nrrd", *FAST], capsys)
    inside = sitk.GetArrayFromImage(sitk.Resample(rotated, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)) != 0
    out, original = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out.nrrd"))), sitk.GetArrayFromImage(image)
    assert inside.any() and np.array_equal(out[~inside], original[~inside])


def test_a_dicom_folder_with_two_series_is_refused_listing_them(tmp_path, capsys):
    from test_io import _write_dicom_series

    _write_dicom_series(tmp_path / "study", _lge(shape=(2, 20, 20), seed=1), "1.2.826.0.1.3680043.2.1125.1.1")
    _write_dicom_series(tmp_path / "study", _lge(shape=(2, 20, 20), seed=2), "1.2.826.0.1.3680043.2.1125.2.2")
    _refused(["segment", "--input", tmp_path / "study", "--output", tmp_path / "mask.nrrd"], capsys, tmp_path,
             tmp_path / "study", "2 DICOM series", "1.2.826.0.1.3680043.2.1125.2.2")


@pytest.mark.parametrize("content, problem", [(b"not an image at all" * 10, "cannot read the image"),
                                              (None, "truncated NIfTI file")])
def test_a_corrupt_or_truncated_file_is_refused(tmp_path, capsys, content, problem):
    path = tmp_path / "scan.nii"
    if content is None:
        _write(_lge(), path)
        content = path.read_bytes()[:-500]
    path.write_bytes(content)
    _refused(["segment", "--input", path, "--output", tmp_path / "mask.nrrd"], capsys, tmp_path, path, problem)


@pytest.mark.parametrize("image, problem", [
    (sitk.Image([20, 20, 3, 4], sitk.sitkInt16), "4D image"),
    (sitk.Image([20, 20, 3], sitk.sitkVectorUInt8, 3), "vector image"),
    (sitk.Image([20, 20, 3], sitk.sitkComplexFloat32), "complex-valued"),
])
def test_4d_rgb_and_complex_images_are_refused(tmp_path, capsys, image, problem):
    path = _write(image, tmp_path / "scan.nrrd")
    _refused(["segment", "--input", path, "--output", tmp_path / "mask.nrrd"], capsys, tmp_path, path, problem)


def test_an_empty_roi_and_one_that_misses_the_image_are_refused(tmp_path, case, capsys):
    empty = _write(_roi(_lge(), value=0), tmp_path / "empty.nrrd")
    _refused(["enhance", "--input", case[0], "--roi", empty, "--output", tmp_path / "out.nrrd", *FAST],
             capsys, tmp_path, empty, "the ROI is empty")
    far = _roi(_lge())
    far.SetOrigin((900.0, 900.0, 900.0))
    far = _write(far, tmp_path / "far.nrrd")
    _refused(["enhance", "--input", case[0], "--roi", far, "--output", tmp_path / "out.nrrd", *FAST],
             capsys, tmp_path, far, "does not overlap the image")


def test_a_missing_input_is_refused(tmp_path, case, capsys):
    _refused(["enhance", "--input", tmp_path / "nope.nii.gz", "--roi", case[1], "--output", tmp_path / "out.nrrd"],
             capsys, tmp_path, tmp_path / "nope.nii.gz", "file or folder not found")


# ---- outputs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_symlinked_output_onto_an_existing_file_is_refused(tmp_path, case, capsys, overwrite):
    victim = tmp_path / "precious.nrrd"
    shutil.copyfile(case[0], victim)
    (tmp_path / "out.nrrd").symlink_to(victim)
    _refused(["enhance", "--input", case[0], "--roi", case[1], "--output", tmp_path / "out.nrrd", *FAST, *overwrite],
             capsys, tmp_path, tmp_path / "out.nrrd", "symbolic link")


def test_an_existing_output_is_kept_without_overwrite(tmp_path, case, capsys):
    (tmp_path / "out.nrrd").write_bytes(b"yesterday's result")
    _refused(["enhance", "--input", case[0], "--roi", case[1], "--output", tmp_path / "out.nrrd", *FAST],
             capsys, tmp_path, tmp_path / "out.nrrd", "already exists")


def test_an_output_folder_that_cannot_be_written_is_refused_before_the_work(tmp_path, case, capsys):
    """Under a regular file: no folder can be made there, even by root."""
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    _refused(["enhance", "--input", case[0], "--roi", case[1], "--output", tmp_path / "notes.txt" / "out.nrrd", *FAST],
             capsys, tmp_path, tmp_path / "notes.txt" / "out.nrrd", "is a file, not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder, so permissions cannot refuse it")
def test_an_output_folder_without_write_permission_is_refused(tmp_path, case, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        _refused(["segment", "--input", case[0], "--output", locked / "mask.nrrd"], capsys, tmp_path,
                 locked / "mask.nrrd", "cannot write in the folder")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("output, problem", [("lge.nrrd", "must differ"), ("out.png", "cannot write this format")])
def test_an_output_that_is_the_input_or_of_an_unwritable_format_is_refused(tmp_path, case, capsys, output, problem):
    _refused(["enhance", "--input", case[0], "--roi", case[1], "--output", tmp_path / output, "--overwrite", *FAST],
             capsys, tmp_path, tmp_path / output, problem)


# ---- parameters ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, problem", [("--lam", "0", "lambda"), ("--k", "0", "k (the number"),
                                                    ("--steps", "9", "steps (fast mode)")])
def test_bad_parameters_are_refused_before_anything_is_read(tmp_path, case, capsys, option, value, problem):
    argv = ["enhance", "--input", case[0], "--roi", case[1], "--output", tmp_path / "out.nrrd", *FAST]
    argv[argv.index(option) + 1] = value
    _refused(argv, capsys, tmp_path, "", problem)


def test_an_unknown_progress_mode_in_the_environment_is_refused(tmp_path, case, capsys, monkeypatch):
    monkeypatch.setenv("SCARENHANCE_PROGRESS", "fireworks")
    _refused(["segment", "--input", case[0], "--output", tmp_path / "mask.nrrd"], capsys, tmp_path,
             "$SCARENHANCE_PROGRESS", "fireworks")
