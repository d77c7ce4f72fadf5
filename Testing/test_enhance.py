"""enhance_scar on volumes: geometry, bit-identical outside, uncertainty, bad inputs, model folders, CLI."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from scarenhance.bundle import save_bundle
from scarenhance.diffusion import enhance_scar, load_diffusion_model
from scarenhance.diffusion.network import ConditionalDenoiser, network_def
from scarenhance.errors import InputError, ModelError

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_res_blocks=1, norm_num_groups=8, num_head_channels=8)
FAST = dict(lam=6, k=2, seed=3, device="cpu")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ConditionalDenoiser(**TINY).eval()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, net):
    meta = {"version": "0.0.1", "scarenhance": {"kind": "scar-diffusion", "train_t_max": 400}}
    return save_bundle(tmp_path_factory.mktemp("model") / "tiny", net, network_def("cpu-small", **TINY), meta)


def _case(dtype=np.int16):
    """A 3-slice volume, oblique and anisotropic, slices along the image's y axis (largest spacing)."""
    rng = np.random.default_rng(0)
    arr = (rng.random((30, 3, 36)) * 900 + 50).astype(dtype)  # numpy (z, y, x)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.4, 9.0, 1.3))
    image.SetOrigin((-20.0, 5.0, 31.5))
    c, s = np.cos(0.3), np.sin(0.3)
    image.SetDirection((c, -s, 0, s, c, 0, 0, 0, 1))
    roi = np.zeros(arr.shape, np.uint8)
    roi[8:20, 0:2, 10:25] = 1
    roi_img = sitk.GetImageFromArray(roi)
    roi_img.CopyInformation(image)
    return image, roi_img


def test_output_keeps_geometry_and_every_voxel_outside_the_roi(net):
    image, roi = _case()
    mean, std = enhance_scar(image, roi, model=net, **FAST)
    for out in (mean, std):
        assert out.GetSize() == image.GetSize() and out.GetSpacing() == image.GetSpacing()
        assert out.GetOrigin() == image.GetOrigin() and out.GetDirection() == image.GetDirection()
    src, got, sd = (sitk.GetArrayFromImage(x) for x in (image, mean, std))
    inside = sitk.GetArrayFromImage(roi).astype(bool)
    assert got.dtype == np.float32 and sd.dtype == np.float32
    assert np.array_equal(got[~inside], src[~inside].astype(np.float32))  # bit for bit
    assert not np.allclose(got[inside], src[inside])  # the ROI was processed
    lo, hi = src.min(), src.max()
    assert got.min() >= lo - 1e-3 and got.max() <= hi + 1e-3  # stays in the input's intensity range
    assert (sd >= 0).all() and (sd[~inside] == 0).all() and sd[inside].mean() > 0


def test_float64_input_comes_back_float64_and_identical_outside(net):
    image, roi = _case(np.float64)
    mean, _ = enhance_scar(image, roi, model=net, **FAST)
    got, src = sitk.GetArrayFromImage(mean), sitk.GetArrayFromImage(image)
    inside = sitk.GetArrayFromImage(roi).astype(bool)
    assert got.dtype == np.float64 and np.array_equal(got[~inside], src[~inside])


def test_same_seed_same_volume_and_k1_has_zero_spread(net):
    image, roi = _case()
    a, _ = enhance_scar(image, roi, model=net, **FAST)
    b, _ = enhance_scar(image, roi, model=net, **FAST)
    assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    _, std = enhance_scar(image, roi, model=net, lam=6, k=1, seed=3, device="cpu", steps=3)
    assert not sitk.GetArrayFromImage(std).any()


def test_repeat_0_is_the_k1_run_and_seeds_do_not_share_streams(net):
    """With k = 2, mean ± std are the two repeats (population std); repeat 0 is the k = 1 run with the same
    seed, and repeat 1 is not the k = 1 run with seed + 1 (streams from SeedSequence([seed, repeat, slice]))."""
    image, roi = _case(np.float64)
    inside = sitk.GetArrayFromImage(roi).astype(bool)
    mean, std = (sitk.GetArrayFromImage(v) for v in enhance_scar(image, roi, model=net, lam=5, k=2, seed=20, device="cpu",
                                                                  agreement=0.0))  # the plain mean of the two
    first = sitk.GetArrayFromImage(enhance_scar(image, roi, model=net, lam=5, k=1, seed=20, device="cpu")[0])
    second = 2 * mean - first  # the other repeat
    assert np.allclose(np.abs(second - mean), std, rtol=1e-5, atol=1e-3)
    assert (std[inside] > 0).mean() > 0.9 and not std[~inside].any()
    next_seed = sitk.GetArrayFromImage(enhance_scar(image, roi, model=net, lam=5, k=1, seed=21, device="cpu")[0])
    assert np.abs(second - next_seed)[inside].max() > 1.0


def test_roi_on_another_grid_is_resampled_nearest_neighbour(net):
    image, roi = _case()
    coarse = sitk.Resample(roi, [s // 2 for s in roi.GetSize()], sitk.Transform(), sitk.sitkNearestNeighbor,
                           roi.GetOrigin(), [sp * 2 for sp in roi.GetSpacing()], roi.GetDirection(), 0, sitk.sitkUInt8)
    on_grid = sitk.Resample(coarse, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    a, _ = enhance_scar(image, coarse, model=net, **FAST)
    b, _ = enhance_scar(image, on_grid, model=net, **FAST)
    assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(lam=0), "lambda"),
        (dict(lam=1001), "lambda"),
        (dict(k=0), "k "),
        (dict(lam=10, steps=11), "steps"),
        (dict(seed=-2), "seed"),
    ],
)
def test_bad_parameters_are_input_errors(net, change, match):
    image, roi = _case()
    with pytest.raises(InputError, match=match):
        enhance_scar(image, roi, model=net, **{**FAST, **change})


def test_bad_images_and_rois_are_input_errors(net):
    image, roi = _case(np.float32)
    arr = sitk.GetArrayFromImage(image)
    arr[0, 0, 0] = np.nan
    nan_image = sitk.GetImageFromArray(arr)
    nan_image.CopyInformation(image)
    with pytest.raises(InputError, match="1 NaN or infinite"):
        enhance_scar(nan_image, roi, model=net, **FAST)

    empty = sitk.Image(roi.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(roi)
    with pytest.raises(InputError, match="ROI is empty"):
        enhance_scar(image, empty, model=net, **FAST)

    far = sitk.Image(roi)
    far.SetOrigin((500.0, 500.0, 500.0))
    with pytest.raises(InputError, match="does not overlap"):
        enhance_scar(image, far, model=net, **FAST)

    with pytest.raises(InputError, match="3D"):
        enhance_scar(image, roi[:, :, 0], model=net, **FAST)


def test_model_folder_round_trip_and_training_range_warning(model_dir, net):
    loaded = load_diffusion_model(model_dir)
    assert isinstance(loaded, ConditionalDenoiser) and loaded.metadata["scarenhance"]["kind"] == "scar-diffusion"
    x, t = torch.randn(2, 2, 8, 8), torch.tensor([3, 300])
    with torch.no_grad():
        assert torch.equal(loaded(x, t), net(x, t))
    image, roi = _case()
    with pytest.warns(UserWarning, match="beyond the largest step"):
        enhance_scar(image, roi, model=loaded, lam=401, k=1, steps=2, seed=0, device="cpu")


def test_a_segmentation_model_is_refused(tmp_path, net):
    folder = save_bundle(tmp_path / "seg", net, network_def("cpu-small", **TINY), {"scarenhance": {"kind": "heart-segmentation"}})
    with pytest.raises(ModelError, match="scar-diffusion"):
        load_diffusion_model(folder)


def test_cli_writes_both_outputs_reports_progress_and_refuses_to_overwrite(tmp_path, model_dir, capsys, monkeypatch):
    monkeypatch.setenv("SCARENHANCE_PROGRESS", "lines")  # what the Slicer runner sets
    image, roi = _case()
    sitk.WriteImage(image, str(tmp_path / "lge.nii.gz"))
    sitk.WriteImage(roi, str(tmp_path / "roi.nii.gz"))
    from scarenhance.cli import main

    args = ["enhance", "--input", str(tmp_path / "lge.nii.gz"), "--roi", str(tmp_path / "roi.nii.gz"),
            "--output", str(tmp_path / "out.nii.gz"), "--std-output", str(tmp_path / "sd.nrrd"),
            "--model", str(model_dir), "--lam", "4", "--k", "2", "--steps", "2", "--seed", "1", "--device", "cpu"]
    assert main(args + ["--progress", "lines"]) == 0  # the machine lines the Slicer runner asks for
    assert capsys.readouterr().err.count("PROGRESS") >= 2 * 2  # at least once per reverse step
    out = sitk.ReadImage(str(tmp_path / "out.nii.gz"))
    assert out.GetSize() == image.GetSize() and (tmp_path / "sd.nrrd").is_file()
    before = (tmp_path / "out.nii.gz").read_bytes()
    assert main(args) == 2  # refused before any work, with the file named
    err = capsys.readouterr().err
    assert err.startswith("scarenhance enhance: error:") and "already exists" in err and "out.nii.gz" in err
    assert (tmp_path / "out.nii.gz").read_bytes() == before

    far = sitk.Image(roi)
    far.SetOrigin((500.0, 500.0, 500.0))
    sitk.WriteImage(far, str(tmp_path / "far.nii.gz"))
    args[args.index("--roi") + 1] = str(tmp_path / "far.nii.gz")
    assert main(args + ["--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "does not overlap" in err and "far.nii.gz" in err  # the error names the ROI file
    assert (tmp_path / "out.nii.gz").read_bytes() == before


def test_the_shipped_default_model_loads_and_runs():
    from scarenhance.model_zoo import DIFFUSION, registry_entries
    from scarenhance.bundle import folder_digest

    net = load_diffusion_model()  # the registry's default scar-diffusion model
    entry = next(e for e in registry_entries() if e["kind"] == DIFFUSION and e.get("default"))
    assert folder_digest(net.model_dir) == entry["folder_sha256"]
    assert net.metadata["scarenhance"]["train_t_max"] >= 250  # the default λ is inside its training range
    from scarenhance.diffusion.enhance import training_windows

    assert training_windows(net) == (128, 128)  # it trained on 128-px crops: its windows are that size
    image, roi = _case()
    mean, std = enhance_scar(image, roi, lam=250, k=1, steps=2, seed=0, device="cpu")
    inside = sitk.GetArrayFromImage(roi).astype(bool)
    assert np.array_equal(sitk.GetArrayFromImage(mean)[~inside], sitk.GetArrayFromImage(image)[~inside].astype(np.float32))


@pytest.mark.parametrize("recorded, min_window, windows", [
    ({}, 0, (2, 44, 48)), ({"train_crop_px": 64}, 0, (2, 64, 64)), ({"train_crop_px": 0}, 0, (2, 44, 48)),
    ({}, 80, (2, 80, 80)), ({"train_crop_px": 64}, 32, (2, 64, 64)),
    ({"train_crop_px": 32}, 0, (2, 32, 32)), ({"train_crop_px": 24}, 0, (18, 24, 24)),
    ({"train_crop_px": 16, "train_crop_max_px": 24}, 0, (18, 24, 24)), ({"train_crop_px": 24}, 48, (2, 48, 48))])
def test_windows_are_within_the_training_crops_the_model_records(monkeypatch, recorded, min_window, windows):
    """The ROI box (12 × 15 px) plus 16 px a side gives 44 × 48 on each of the 2 ROI slices. A model trained on
    64-px crops gets 64 × 64; one trained on 32-px crops one 32-px window a slice (the box fits with 8 px a
    side), one trained on 24-px crops 3 × 3 windows a slice; a caller's min_window raises the floor (and the
    ceiling with it), never lowers it."""
    import scarenhance.diffusion.enhance as E

    seen = []
    real_sample = E.sample
    monkeypatch.setattr(E, "sample", lambda net, x0, *a, **kw: seen.append(x0.shape) or real_sample(net, x0, *a, **kw))
    torch.manual_seed(0)
    net = ConditionalDenoiser(**TINY).eval()
    net.metadata = {"scarenhance": recorded}
    image, roi = _case()
    mean, _ = enhance_scar(image, roi, model=net, min_window=min_window, **FAST)
    assert seen == [windows]
    inside = sitk.GetArrayFromImage(roi).astype(bool)
    assert np.array_equal(sitk.GetArrayFromImage(mean)[~inside], sitk.GetArrayFromImage(image)[~inside].astype(np.float32))
    assert np.isfinite(sitk.GetArrayFromImage(mean)).all()


@pytest.mark.parametrize("bad", [10**6, -1, 64.5, True])
def test_a_bad_minimum_window_is_an_input_error(bad):
    net = ConditionalDenoiser(**TINY).eval()
    image, roi = _case()
    with pytest.raises(InputError, match="min_window"):
        enhance_scar(image, roi, model=net, min_window=bad, **FAST)


@pytest.mark.parametrize("key", ["train_crop_px", "train_crop_max_px"])
@pytest.mark.parametrize("bad", [10**6, -1, 64.5, "128", True])
def test_a_bad_recorded_training_crop_is_a_model_error(key, bad):
    net = ConditionalDenoiser(**TINY).eval()
    net.metadata = {"scarenhance": {key: bad}}
    image, roi = _case()
    with pytest.raises(ModelError, match=key):
        enhance_scar(image, roi, model=net, **FAST)


def test_a_largest_training_crop_below_the_smallest_is_a_model_error():
    net = ConditionalDenoiser(**TINY).eval()
    net.metadata = {"scarenhance": {"train_crop_px": 64, "train_crop_max_px": 32}}
    image, roi = _case()
    with pytest.raises(ModelError, match="smaller than the smallest"):
        enhance_scar(image, roi, model=net, **FAST)
