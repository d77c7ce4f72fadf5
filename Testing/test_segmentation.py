"""Heart segmentation: post-processing in mm, case split, training + resume, geometry, model errors, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from scarenhance import cli
from scarenhance.bundle import WEIGHTS, METADATA, save_bundle
from scarenhance.errors import InputError, ModelError
from scarenhance.segmentation import load_segmentation_model, segment_heart
from scarenhance.segmentation import network as N
from scarenhance.segmentation import postprocess as P
from scarenhance.segmentation.data import CaseSlices, split_cases
from scarenhance.evaluation.metrics import dice
from scarenhance.segmentation.train import train_segmentation

torch.set_num_threads(1)


# ---- post-processing ------------------------------------------------------------------------------


@pytest.mark.parametrize("sitk_spacing", [(1.4, 0.7, 8.0), (10.0, 0.7, 1.4)])
def test_dilation_grows_by_the_requested_mm_on_an_anisotropic_grid(sitk_spacing):
    """A 0.7 × 1.4 mm in-plane grid: 5 mm is 7 rows of 0.7 mm but only 3 columns of 1.4 mm.
    The second case has the slices along x (the largest spacing), as in a sagittal-stored stack."""
    spacing = sitk_spacing[::-1]  # numpy order
    slice_axis = int(np.argmax(spacing))
    shape = [40, 40, 40]
    shape[slice_axis] = 3
    mask = np.zeros(shape, dtype=np.uint8)
    box = [slice(15, 25)] * 3
    box[slice_axis] = slice(1, 2)  # one slice only: dilation must stay in-plane
    mask[tuple(box)] = 1
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing(sitk_spacing)
    grown = sitk.GetArrayFromImage(P.clean_mask_image(image, dilate_mm=5.0)).astype(bool)
    assert grown.any(axis=tuple(a for a in range(3) if a != slice_axis)).sum() == 1, "dilation leaked across slices"
    for axis in range(3):
        if axis == slice_axis:
            continue
        other = tuple(a for a in range(3) if a != axis)
        before = np.flatnonzero(mask.any(axis=other))
        after = np.flatnonzero(grown.any(axis=other))
        growth_mm = (before[0] - after[0]) * spacing[axis]
        assert growth_mm == pytest.approx((after[-1] - before[-1]) * spacing[axis])  # symmetric
        assert 5.0 - spacing[axis] < growth_mm <= 5.0 + 1e-9, (axis, growth_mm)
    # a disk in mm, not a square in pixels: the corner pixels 5 mm diagonally away stay out
    assert grown.sum() < mask.sum() + 2 * (7 + 3) * 10 + 4 * 7 * 3


def test_dilation_by_zero_is_identity_and_negative_is_an_error():
    mask = np.zeros((2, 8, 8), bool)
    mask[0, 3:5, 3:5] = True
    assert np.array_equal(P.dilate_in_plane(mask, (5.0, 1.0, 1.0), 0, 0.0), mask)
    with pytest.raises(InputError, match="≥ 0 mm"):
        P.dilate_in_plane(mask, (5.0, 1.0, 1.0), 0, -1.0)


def test_largest_component_and_holes_filled_per_slice():
    mask = np.zeros((3, 30, 30), bool)
    mask[0:3, 5:20, 5:20] = True  # the heart: one 3D component over three slices ...
    mask[1, 10:14, 10:14] = False  # ... with a hole in the middle slice
    mask[1, 25:28, 25:28] = True  # a small separate blob (false positive)
    mask[2, 0, 29] = True
    out = P.clean_mask(mask, (8.0, 1.0, 1.0), slice_axis=0)
    expected = np.zeros_like(mask)
    expected[0:3, 5:20, 5:20] = True
    assert out.dtype == np.uint8 and np.array_equal(out.astype(bool), expected)
    assert not P.clean_mask(np.zeros((2, 5, 5), bool), (8.0, 1.0, 1.0), 0).any()


# ---- data ---------------------------------------------------------------------------------------


def test_split_is_by_case_seeded_and_disjoint():
    cases = [CaseSlices(f"Case_{i:03d}", np.zeros((3, 16, 16), np.float32), np.zeros((3, 16, 16), np.uint8)) for i in range(10)]
    train, val = split_cases(cases, 0.2, seed=0)
    assert len(val) == 2 and len(train) == 8
    assert {c.name for c in train}.isdisjoint({c.name for c in val})
    again = split_cases(list(reversed(cases)), 0.2, seed=0)  # order of reading does not matter
    assert [c.name for c in again[1]] == [c.name for c in val]
    assert any([c.name for c in split_cases(cases, 0.2, seed=s)[1]] != [c.name for c in val] for s in range(1, 6))
    assert split_cases(cases[:1], 0.2)[1] == []


def test_network_presets():
    small = N.build(N.network_def("cpu-small"))
    assert sum(p.numel() for p in small.parameters()) < 1_000_000  # the shipped model stays a few MB
    paper = N.network_def("gpu-paper")
    assert paper["channels"] == [64, 128, 256, 512, 1024] and paper["strides"] == [2, 2, 2, 2]
    assert small(torch.zeros(2, 1, 48, 64)).shape == (2, 3, 48, 64)  # background, LV blood pool, LV myocardium
    with pytest.raises(InputError, match="unknown segmentation preset"):
        N.network_def("huge")


# ---- training, resume, model folder --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from scarenhance.phantom import write_cases

    root = tmp_path_factory.mktemp("tiny")
    write_cases(root, 4, seed=424242, size=(80, 80), spacing=2.2, n_slices=3)
    return root


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "seg"
    lines = []
    summary = train_segmentation(tiny_data, out, epochs=3, batch_size=4, crop=48, steps_per_epoch=4, spacing_mm=2.5,
                                 channels=(4, 8, 16, 32, 64), val_fraction=0.25, device="cpu", lr=3e-3,
                                 command="pytest", log=lines.append)
    return out, summary, lines


def test_training_writes_a_model_folder_and_the_loss_falls(trained):
    out, summary, lines = trained
    meta = json.loads((out / METADATA).read_text())
    history = meta["scarenhance"]["training"]["history"]
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"], history
    assert summary["train_cases"] == 3 and summary["val_cases"] == 1
    se = meta["scarenhance"]
    assert se["kind"] == "heart-segmentation" and se["input"]["spacing_mm"] == 2.5 and se["training"]["command"] == "pytest"
    from scarenhance.device import cpu_has_native_bf16

    assert se["training"]["settings"]["precision"] == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert se["validation"]["dice"] == pytest.approx(summary["val_dice"]) and se["validation"]["cases"] == 1
    assert meta["version"] and json.loads((out / "configs/inference.json").read_text())["network_def"]["channels"] == [4, 8, 16, 32, 64]
    assert sum("train-seg epoch" in line for line in lines) == 3
    assert any((out / "training/tensorboard").iterdir())


def test_resume_continues_and_a_second_run_never_overwrites(trained, tiny_data):
    out, summary, _ = trained
    with pytest.raises(InputError, match="--resume"):
        train_segmentation(tiny_data, out, epochs=3, device="cpu")
    lines = []
    more = train_segmentation(tiny_data, out, epochs=4, batch_size=4, crop=48, steps_per_epoch=4, spacing_mm=2.5,
                              channels=(4, 8, 16, 32, 64), val_fraction=0.25, device="cpu", lr=3e-3, resume=True,
                              log=lines.append)
    assert "resuming after epoch 3/4" in lines[1]
    assert sum("train-seg epoch" in line for line in lines) == 1 and more["epochs"] == 4
    state = torch.load(out / "training/latest.pt", weights_only=True)
    # 3 training cases × 3 slices in batches of 4, the partial batch dropped: 2 steps per epoch, 4 epochs
    assert state["epoch"] == 3 and state["optimizer"]["state"][0]["step"].item() == 4 * 2


def oblique_phantom(seed=5, **kw):
    from scarenhance.phantom import generate_case

    case = generate_case(seed, oblique=True, size=(72, 64), spacing=2.1, n_slices=3, **kw)
    return case


def test_segment_heart_output_is_in_the_input_geometry(trained):
    out, _, _ = trained
    image = oblique_phantom().image
    # put the slices on the first image axis, as a volume stored slice-axis-first would have them
    permuted = sitk.PermuteAxes(image, [2, 0, 1])
    for img in (image, permuted):
        mask = segment_heart(img, model=out, device="cpu", dilate_mm=2.0)
        assert mask.GetPixelID() == sitk.sitkUInt8
        assert mask.GetSize() == img.GetSize()
        assert np.allclose(mask.GetSpacing(), img.GetSpacing())
        assert np.allclose(mask.GetOrigin(), img.GetOrigin())
        assert np.allclose(mask.GetDirection(), img.GetDirection())
        assert set(np.unique(sitk.GetArrayViewFromImage(mask))) <= {0, 1}


def test_segment_cli_writes_the_mask_and_refuses_to_overwrite(trained, tmp_path, capsys):
    out, _, _ = trained
    src = tmp_path / "lge.nii.gz"
    sitk.WriteImage(oblique_phantom(6).image, str(src))
    dst = tmp_path / "mask.nii.gz"
    assert cli.main(["segment", "--input", str(src), "--output", str(dst), "--model", str(out), "--device", "cpu"]) == 0
    assert sitk.ReadImage(str(dst)).GetSize() == sitk.ReadImage(str(src)).GetSize()
    assert cli.main(["segment", "--input", str(src), "--output", str(dst), "--model", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_device_cuda_without_gpu_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "lge.nii.gz"
    sitk.WriteImage(oblique_phantom(7).image, str(src))
    assert cli.main(["segment", "--input", str(src), "--output", str(tmp_path / "m.nii.gz"), "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    with pytest.raises(InputError, match="no CUDA GPU"):
        segment_heart(sitk.ReadImage(str(src)), device="cuda")
    assert not (tmp_path / "m.nii.gz").exists()


# ---- model folder errors --------------------------------------------------------------------------


def small_model_folder(path: Path) -> Path:
    definition = N.network_def("cpu-small", channels=(4, 8, 16, 32, 64))
    meta = {"version": "0.0.1", "scarenhance": {"kind": "heart-segmentation", "input": {"spacing_mm": 2.0, "multiple_of": 16}}}
    return save_bundle(path, N.build(definition), definition, meta)


def test_checksum_mismatch_is_a_clear_model_error(tmp_path):
    folder = small_model_folder(tmp_path / "m")
    weights = folder / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_segmentation_model(folder)


def test_truncated_weights_file_is_a_clear_model_error(tmp_path):
    folder = small_model_folder(tmp_path / "m")
    weights = folder / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="model.pt.*(checksum mismatch|truncated)"):
        load_segmentation_model(folder)
    # the same truncated file with metadata claiming its checksum: torch must not crash deep inside
    meta = json.loads((folder / METADATA).read_text())
    from scarenhance.bundle import sha256_file

    meta["scarenhance"]["weights_sha256"] = sha256_file(weights)
    (folder / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="model.pt"):
        load_segmentation_model(folder)


def test_a_model_of_another_kind_or_a_missing_folder_is_refused(tmp_path):
    folder = small_model_folder(tmp_path / "m")
    meta = json.loads((folder / METADATA).read_text())
    meta["scarenhance"]["kind"] = "scar-diffusion"
    (folder / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="'scar-diffusion' model"):
        load_segmentation_model(folder)
    with pytest.raises(ModelError, match="no model folder"):
        load_segmentation_model(str(tmp_path / "nowhere"))


# ---- the shipped demo model -------------------------------------------------------------------------


def test_shipped_demo_model_is_registered_verified_and_segments_a_fresh_phantom():
    from scarenhance.bundle import folder_digest
    from scarenhance.labels import heart_mask
    from scarenhance.model_zoo import SEGMENTATION, default_model_id, registry_entries
    from scarenhance.phantom import canonical_labels, case_seed, generate_case

    entry = next(e for e in registry_entries() if e["id"] == default_model_id(SEGMENTATION))
    model = load_segmentation_model(None, "cpu")
    assert folder_digest(model.path) == entry["folder_sha256"]
    assert (model.path / WEIGHTS).stat().st_size < 10_000_000  # a few MB: the shipped cpu-medium model is 7.6 MB
    assert model.metadata["scarenhance"]["validation"]["dice"] > 0.8
    assert model.has_classes and model.normalisation["method"] == "percentile"
    # the phantom generator is a family the shipped model never trained on (it learned from scarenhance.synth)
    case = generate_case(case_seed(9002, 1), n_slices=4, ti_quality="good")
    mask = segment_heart(case.image, device="cpu")
    assert dice(sitk.GetArrayViewFromImage(mask) > 0, heart_mask(canonical_labels(case))) > 0.85


# ---- classes, the ROI as their union, round-1 models ----------------------------------------------


def test_cleaned_roi_is_exactly_the_union_of_the_labels_and_holes_become_blood():
    classes = np.zeros((2, 30, 30), np.uint8)
    classes[:, 5:25, 5:25] = 2  # myocardium ring ...
    classes[:, 9:21, 9:21] = 1  # ... around the blood pool
    classes[0, 13:16, 13:16] = 0  # a hole the network left in the cavity
    classes[1, 0:2, 28:30] = 1  # a stray blob, not connected
    roi, labels = P.clean_classes_array(classes, (8.0, 1.0, 1.0), 0)
    assert np.array_equal(roi.astype(bool), labels > 0)
    assert labels[0, 14, 14] == 1 and labels[1, 0, 29] == 0
    assert np.array_equal(labels[:, 5:25, 5:25] == 2, classes[:, 5:25, 5:25] == 2)
    grown, same = P.clean_classes_array(classes, (8.0, 1.0, 1.0), 0, dilate_mm=2.0)
    assert np.array_equal(same, labels) and grown.sum() > roi.sum()  # dilation grows the ROI, not the classes


def test_segment_gives_labels_whose_union_is_the_roi_in_the_input_geometry(trained):
    from scarenhance.segmentation import segment

    out, _, _ = trained
    image = oblique_phantom(8).image
    result = segment(image, model=out, device="cpu")
    for volume in (result.roi, result.labels):
        assert volume.GetSize() == image.GetSize() and np.allclose(volume.GetDirection(), image.GetDirection())
    labels = sitk.GetArrayFromImage(result.labels)
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert np.array_equal(sitk.GetArrayFromImage(result.roi) > 0, labels > 0)
    assert isinstance(result.report.plausible, bool) and "volume_ml" in result.report.to_dict()


def test_a_round_1_single_output_model_still_loads_and_segments(tmp_path):
    """Round-1 folders: one sigmoid output, no recorded normalisation (min–max)."""
    from scarenhance.segmentation import segment
    from scarenhance.segmentation.intensity import MINMAX

    definition = N.network_def("cpu-small", channels=(4, 8, 16, 32, 64), out_channels=1)
    torch.manual_seed(0)
    meta = {"version": "1.0.0", "scarenhance": {"kind": "heart-segmentation", "input": {"spacing_mm": 2.0, "multiple_of": 16}}}
    folder = save_bundle(tmp_path / "old", N.build(definition), definition, meta)
    model = load_segmentation_model(folder)
    assert not model.has_classes and model.normalisation == MINMAX
    result = segment(oblique_phantom(9).image, model=model, device="cpu")
    assert result.labels is None and result.roi.GetPixelID() == sitk.sitkUInt8
    src = tmp_path / "lge.nii.gz"
    sitk.WriteImage(oblique_phantom(9).image, str(src))
    assert cli.main(["segment", "--input", str(src), "--output", str(tmp_path / "roi.nii.gz"), "--model", str(folder),
                     "--labels-output", str(tmp_path / "labels.nii.gz")]) == 2
    assert not (tmp_path / "roi.nii.gz").exists() and not (tmp_path / "labels.nii.gz").exists()


def test_segment_cli_writes_labels_and_report(trained, tmp_path, capsys):
    out, _, _ = trained
    src = tmp_path / "lge.nii.gz"
    sitk.WriteImage(oblique_phantom(10).image, str(src))
    paths = {k: tmp_path / f"{k}.nii.gz" for k in ("roi", "labels")}
    report = tmp_path / "report.json"
    assert cli.main(["segment", "--input", str(src), "--output", str(paths["roi"]), "--labels-output", str(paths["labels"]),
                     "--report", str(report), "--model", str(out), "--device", "cpu", "--dilate-mm", "2"]) == 0
    roi, labels = (sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in paths.values())
    assert roi.shape == labels.shape and np.all(roi[labels > 0] == 1)  # the dilated ROI holds every labelled voxel
    data = json.loads(report.read_text())
    assert data["plausible"] in (True, False) and isinstance(data["warnings"], list) and data["dilate_mm"] == 2.0
    err = capsys.readouterr().err
    assert all(f"warning: {w}" in err for w in data["warnings"])


def test_fine_tuning_starts_from_the_given_model_and_refuses_a_mismatch(trained, tiny_data, tmp_path):
    out, _, _ = trained
    kw = dict(epochs=1, batch_size=4, crop=48, steps_per_epoch=1, spacing_mm=2.5, val_fraction=0.25, device="cpu", lr=1e-12)
    tuned = tmp_path / "tuned"
    train_segmentation(tiny_data, tuned, init_from=str(out), channels=(4, 8, 16, 32, 64), **kw)
    meta = json.loads((tuned / METADATA).read_text())["scarenhance"]["training"]
    assert meta["initialised_from"]["weights_sha256"] == json.loads((out / METADATA).read_text())["scarenhance"]["weights_sha256"]
    a, b = (torch.load(p / WEIGHTS, weights_only=True) for p in (out, tuned))
    conv = next(k for k in a if k.endswith("conv.weight"))
    assert torch.allclose(a[conv], b[conv], atol=1e-6)  # lr ≈ 0: the weights are the initial model's
    with pytest.raises(InputError, match="network differs"):
        train_segmentation(tiny_data, tmp_path / "other", init_from=str(out), channels=(8, 16, 32, 64, 128), **kw)


def test_training_on_synthetic_slices_only(tmp_path):
    summary = train_segmentation(None, tmp_path / "s", synth=24, synth_val=8, epochs=1, batch_size=4, crop=48,
                                 steps_per_epoch=2, channels=(4, 8, 16, 32, 64), device="cpu", log=lambda m: None)
    assert summary["synthetic_slices"] == 24 and summary["val_cases"] == 1 and summary["val_dice"] is not None
    meta = json.loads((tmp_path / "s" / METADATA).read_text())["scarenhance"]
    assert meta["input"]["normalisation"]["method"] == "percentile" and meta["training"]["synthetic_slices"] == 24
    with pytest.raises(InputError, match="nothing to train on"):
        train_segmentation(None, tmp_path / "none", device="cpu")
