"""Diffusion training: pairs and crops from phantoms, EMA, the loss going down, the trainer end to end."""

import json
import threading

import numpy as np
import pytest
import torch

from scarenhance import labels as L
from scarenhance.datasets import Case
from scarenhance.diffusion.data import CropDataset, centre_crop, fixed_batch, random_sides, slice_pairs
from scarenhance.diffusion.network import ConditionalDenoiser
from scarenhance.diffusion.schedule import make_schedule
from scarenhance.diffusion.train import (
    DiffusionTrainConfig,
    EMADenoiser,
    ema_weights,
    make_train_step,
    masked_eps_mse,
    split_cases,
    train_diffusion,
)
from scarenhance.errors import Cancelled, InputError

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_res_blocks=1, norm_num_groups=8, num_head_channels=8)
PHANTOM = dict(n_slices=3, size=(96, 96), spacing=1.6)


def _phantom_case(seed):
    import SimpleITK as sitk

    from scarenhance.phantom import canonical_labels, generate_case

    case = generate_case(seed, scar_pattern="transmural", **PHANTOM)
    labels = sitk.GetImageFromArray(canonical_labels(case))
    labels.CopyInformation(case.image)
    return Case(f"P{seed}", case.image, labels, None, None)


@pytest.fixture(scope="module")
def pairs():
    return slice_pairs([_phantom_case(s) for s in (1, 2)])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from scarenhance.phantom import write_cases

    root = tmp_path_factory.mktemp("phantoms")
    write_cases(root, 3, seed=9, **PHANTOM)
    return root


def test_slice_pairs_hold_image_target_roi_and_labels(pairs):
    assert pairs and all(p.roi.any() for p in pairs)
    for p in pairs:
        assert p.image.shape == p.target.shape == p.roi.shape == p.labels.shape
        assert 0 <= p.image.min() and p.image.max() <= 255 and 0 <= p.target.min() and p.target.max() <= 255
        assert np.array_equal(p.roi, L.heart_mask(p.labels))
        assert np.array_equal(p.target[~p.roi], p.image[~p.roi])  # targets only change the heart
    scarred = [p for p in pairs if (p.labels == L.SCAR).sum() > 10]
    assert scarred and all(p.target[p.labels == L.SCAR].mean() > p.image[p.labels == L.SCAR].mean() for p in scarred)


def test_slice_pairs_can_take_the_roi_from_a_function(pairs):
    import SimpleITK as sitk

    case = _phantom_case(1)

    def box_roi(c):  # stands in for the segmentation model
        roi = sitk.Image(c.image.GetSize(), sitk.sitkUInt8)
        roi.CopyInformation(c.image)
        roi[40:60, 40:60, :] = 1
        return roi

    got = slice_pairs([case], roi_fn=box_roi)
    assert got and all(p.roi.sum() == 400 for p in got)


def test_crops_are_centred_on_the_roi_and_augmented_consistently(pairs):
    data = CropDataset(pairs, crop_size=32, length=40, seed=3)
    assert len(data) == 40
    for i in range(len(data)):
        item = data[i]
        assert item["x0"].shape == item["y0"].shape == item["mask"].shape == (1, 32, 32)
        assert item["mask"][0, 15:17, 15:17].sum() >= 1  # the centre pixel is in the ROI (any flip/turn)
        assert -1 <= item["x0"].min() and item["x0"].max() <= 1
        outside = item["mask"] == 0
        assert torch.equal(item["x0"][outside], item["y0"][outside])  # image and target moved together
        assert item["scar"].shape == item["myo"].shape == (1, 32, 32)
        assert not (item["scar"] + item["myo"] > item["mask"]).any()  # both lie in the ROI and never overlap
        assert (item["y0"][item["scar"] > 0] >= item["x0"][item["scar"] > 0]).all()  # and moved with it: targets brighten scar
    batch = fixed_batch(pairs, 32, 5, seed=1)
    assert batch["x0"].shape == (5, 1, 32, 32)
    assert torch.equal(batch["y0"], fixed_batch(pairs, 32, 5, seed=1)["y0"])


def test_scar_focus_centres_crops_on_scar(pairs):
    focused = CropDataset(pairs, crop_size=32, length=30, seed=2, scar_focus=1.0)
    assert focused.scarred
    for i in range(len(focused)):
        item = focused[i]
        centre = (slice(0, 1), slice(15, 17), slice(15, 17))  # the 2×2 centre block, whatever the flip/turn
        assert (item["y0"][centre] > item["x0"][centre]).any()  # a scar pixel there: the target brightened it
    uniform = CropDataset(pairs, crop_size=32, length=30, seed=2, scar_focus=0.0)
    centred_on_scar = sum(bool((uniform[i]["y0"][centre] > uniform[i]["x0"][centre]).any()) for i in range(30))
    assert centred_on_scar < 25  # ROI-centred crops mostly land elsewhere


def test_a_smaller_window_is_the_centre_of_the_crop_and_sides_are_drawn_from_the_range(pairs):
    batch = fixed_batch(pairs, 32, 3, seed=1)
    small = centre_crop(batch, 16)
    for key, value in batch.items():
        assert small[key].shape == (3, 1, 16, 16) and torch.equal(small[key], value[..., 8:24, 8:24])
    assert all(torch.equal(centre_crop(batch, 32)[key], batch[key]) for key in batch)
    stream, again = random_sides(16, 32, 4, seed=5), random_sides(16, 32, 4, seed=5)
    draws = [stream() for _ in range(200)]
    assert set(draws) == {16, 20, 24, 28, 32} and draws == [again() for _ in range(200)]


def test_trainer_with_a_smallest_crop_trains_on_random_windows_and_records_the_floor(data_dir, tmp_path, monkeypatch):
    import scarenhance.diffusion.train as train_module
    from scarenhance.diffusion import load_diffusion_model

    seen = []
    real_crop = train_module.centre_crop
    monkeypatch.setattr(train_module, "centre_crop", lambda batch, side: seen.append(side) or real_crop(batch, side))
    config = DiffusionTrainConfig(network=TINY, epochs=2, batch_size=2, crop_size=32, crop_min=16, samples_per_epoch=16,
                                  t_max=300, val_crops=2)
    train_diffusion(data_dir, tmp_path / "m", config, device="cpu", log=lambda m: None)
    assert len(seen) == 16 and set(seen) <= set(range(16, 33, 2)) and len(set(seen)) > 1  # one side per batch
    meta = load_diffusion_model(tmp_path / "m").metadata["scarenhance"]
    assert (meta["train_crop_px"], meta["train_crop_max_px"]) == (16, 32)  # enhance_scar's least window is 16
    for bad, message in ((15, "multiple of 2"), (-2, "multiple of 2"), (34, "cannot exceed")):
        with pytest.raises(InputError, match=message):
            train_diffusion(data_dir, tmp_path / f"bad{bad}", DiffusionTrainConfig(**{**config.__dict__, "crop_min": bad}),
                            device="cpu", log=lambda m: None)
    assert not any((tmp_path / f"bad{bad}").exists() for bad in (15, -2, 34))


def test_ema_follows_the_network_and_is_what_gets_shipped():
    torch.manual_seed(0)
    model = EMADenoiser(ConditionalDenoiser(**TINY), decay=0.5)
    model.update_ema()  # first update copies
    before = [p.clone() for p in model.averaged.parameters()]
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(1.0)
    model.update_ema()
    moved = [(a - b).abs().mean().item() for a, b in zip(model.averaged.parameters(), before)]
    # the second update runs at the warm-up decay d = min(0.5, (1 + 1) / (10 + 1)) = 2/11: each weight
    # moves 1 − d = 9/11 of the way to the network's (+1 here)
    assert moved == pytest.approx([9 / 11] * len(moved), rel=1e-6)
    assert not any(p.requires_grad for p in model.ema.parameters())
    shipped = ConditionalDenoiser(**TINY)
    shipped.load_state_dict(ema_weights(model.state_dict()))
    assert all(torch.equal(a, b) for a, b in zip(shipped.parameters(), model.averaged.parameters()))


def test_a_few_training_steps_lower_the_masked_loss(pairs):
    torch.manual_seed(0)
    schedule = make_schedule()
    net = ConditionalDenoiser(**TINY)
    batch = fixed_batch(pairs, 32, 8, seed=0)
    step = make_train_step(schedule, t_max=400)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    start = masked_eps_mse(net, batch, schedule, (50, 200))
    for _ in range(25):
        optimizer.zero_grad()
        step(net, batch).backward()
        optimizer.step()
    assert masked_eps_mse(net, batch, schedule, (50, 200)) < 0.8 * start


def test_split_cases_is_seeded_and_keeps_both_sides():
    names = [f"C{i}" for i in range(10)]
    train, val = split_cases(names, 0.2, seed=1)
    # the documented recipe: the first round(0.2 · 10) names of the seeded permutation of the sorted names
    order = [str(n) for n in np.random.default_rng(1).permutation(sorted(names))]
    assert (train, val) == (sorted(order[2:]), sorted(order[:2])) == (["C0", "C1", "C2", "C3", "C5", "C6", "C7", "C9"], ["C4", "C8"])
    assert split_cases(names, 0.2, seed=1) == (train, val) and split_cases(names, 0.2, seed=2) != (train, val)
    assert split_cases(["a", "b"], 0.1, 0) == (["b"], ["a"])  # round(0.2) = 0, raised to one case each side
    assert split_cases(["a"], 0.5, 0) == (["a"], [])


def test_trainer_writes_a_loadable_model_resumes_and_refuses_to_overwrite(data_dir, tmp_path):
    from scarenhance.diffusion import load_diffusion_model

    config = DiffusionTrainConfig(network=TINY, epochs=2, batch_size=4, crop_size=32, samples_per_epoch=8,
                                  lr=1e-3, t_max=300, val_crops=4, sample_every=1)
    logs = []
    out = tmp_path / "model"
    summary = train_diffusion(data_dir, out, config, device="cpu", command="scarenhance train-diffusion ...", log=logs.append)
    assert summary["epochs_done"] == 2 and any("CNR(scar,myo)" in line for line in logs)
    net = load_diffusion_model(out)
    meta = net.metadata["scarenhance"]
    assert meta["kind"] == "scar-diffusion" and meta["train_t_max"] == 300 and meta["training"]["command"].startswith("scarenhance")
    assert (out / "training" / "latest.pt").is_file()
    from scarenhance.targets import write_dataset_targets

    # the blood mean of every case, validation ones too: what `scarenhance targets` writes into targets.json
    assert len(meta["training"]["val_cases"]) == 1 and meta["training"]["processes"] == 1
    from scarenhance.device import cpu_has_native_bf16

    assert meta["training"]["precision"] == ("bf16" if cpu_has_native_bf16() else "fp32")  # what the steps ran in
    assert meta["training"]["blood_mean"] == write_dataset_targets(data_dir, tmp_path / "targets")["dataset_blood_mean"]
    with pytest.raises(InputError, match="exists here already"):
        train_diffusion(data_dir, out, config, device="cpu", log=logs.append)
    more = DiffusionTrainConfig(**{**config.__dict__, "epochs": 3, "lr": 2e-4})  # a lower final phase
    resumed = train_diffusion(data_dir, out, more, device="cpu", resume=True, log=logs.append)
    assert resumed["epochs_done"] == 3 and any("resuming after epoch 2" in line for line in logs)
    assert torch.load(out / "training" / "latest.pt", weights_only=False)["optimizer"]["param_groups"][0]["lr"] == 2e-4
    assert json.loads((out / "configs" / "metadata.json").read_text())["scarenhance"]["training"]["stopped"] == "completed"


def test_trainer_stops_on_cancel(data_dir, tmp_path):
    cancel = threading.Event()
    cancel.set()
    config = DiffusionTrainConfig(network=TINY, epochs=1, batch_size=2, crop_size=32, samples_per_epoch=2, val_crops=2)
    with pytest.raises(Cancelled):
        train_diffusion(data_dir, tmp_path / "m", config, device="cpu", cancel=cancel, log=lambda m: None)


def test_a_new_run_can_start_from_an_existing_models_weights(data_dir, tmp_path):
    from scarenhance.diffusion import load_diffusion_model

    config = DiffusionTrainConfig(network=TINY, epochs=1, batch_size=4, crop_size=32, samples_per_epoch=4, lr=1e-3, t_max=300, val_crops=4)
    train_diffusion(data_dir, tmp_path / "first", config, device="cpu", log=lambda m: None)
    logs = []
    frozen = DiffusionTrainConfig(**{**config.__dict__, "lr": 0.0, "init_from": str(tmp_path / "first"),
                                      "scar_weight": 3.0, "myo_weight": 2.0})
    train_diffusion(data_dir, tmp_path / "second", frozen, device="cpu", log=logs.append)
    assert any("starting from the weights of" in line for line in logs)
    first, second = load_diffusion_model(tmp_path / "first"), load_diffusion_model(tmp_path / "second")
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))  # lr 0: unchanged
    recorded = second.metadata["scarenhance"]["training"]["config"]
    assert (recorded["scar_weight"], recorded["myo_weight"], recorded["init_from"]) == (3.0, 2.0, str(tmp_path / "first"))
    from_checkpoint = DiffusionTrainConfig(**{**frozen.__dict__, "init_from": str(tmp_path / "first" / "training" / "latest.pt")})
    train_diffusion(data_dir, tmp_path / "third", from_checkpoint, device="cpu", log=logs.append)
    assert any("EMA weights of" in line for line in logs)
    third = load_diffusion_model(tmp_path / "third")  # epoch 1 was the first run's best and latest
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), third.state_dict().values()))
    other = {**config.__dict__, "network": {**TINY, "channels": (8, 8)}}
    for source in (tmp_path / "first", tmp_path / "first" / "training" / "latest.pt"):
        with pytest.raises(InputError, match="init-from"):
            train_diffusion(data_dir, tmp_path / "fourth", DiffusionTrainConfig(**{**other, "init_from": str(source)}),
                            device="cpu", log=lambda m: None)
