"""The denoiser's optional myocardium input (diffusion/myocardium_input.py, network.py myocardium_input=True).

Given the LV wall, where to brighten is mostly "bright pixels in the wall"; the ROI alone does not tell.
The input is +1 in the wall, −1 outside it, 0 everywhere when unknown; a model that takes it still works
from the ROI alone, and a model without it never sees it.
"""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import ndimage

from scarenhance import labels as L
from scarenhance.diffusion.data import CropDataset, SlicePair
from scarenhance.diffusion.myocardium_input import MAX_SHIFT_PX, UNKNOWN, encode, training_myocardium
from scarenhance.diffusion.network import ConditionalDenoiser, network_def
from scarenhance.diffusion.sampler import sample
from scarenhance.diffusion.schedule import make_schedule
from scarenhance.diffusion.train import DiffusionTrainConfig, make_train_step, train_diffusion
from scarenhance.errors import InputError

from test_diffusion import TINY, _crops
from test_roi_normalised_input import _data, train_then_add_an_input


def _ring(size=64):
    """Canonical labels of one slice: blood disc, a 10-px myocardium ring, a transmural scar sector of it."""
    yy, xx = np.mgrid[:size, :size] - size / 2
    r, angle = np.hypot(yy, xx), np.arctan2(yy, xx)
    labels = np.zeros((size, size), np.uint8)
    labels[r < 10] = L.BLOOD
    labels[(r >= 10) & (r < 20)] = L.MYOCARDIUM
    labels[(r >= 10) & (r < 20) & (np.abs(angle) < 0.8)] = L.SCAR
    return labels


class _Spy(torch.nn.Module):
    """A denoiser stand-in that records what it is given and predicts no noise."""

    def __init__(self, myocardium_input: bool):
        super().__init__()
        self.myocardium_input = myocardium_input
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, x, t, roi=None, with_scar=False):
        self.seen.append(x.detach().clone())
        return x[:, :1] * self.weight


def test_encoding_is_plus_one_in_the_wall_minus_one_outside_and_zero_when_unknown():
    wall = np.zeros((4, 5), bool)
    wall[1:3, 1:4] = True
    encoded = encode(wall, wall.shape)
    assert encoded.dtype == np.float32
    assert set(np.unique(encoded[wall])) == {1.0} and set(np.unique(encoded[~wall])) == {-1.0}
    assert np.all(encode(None, (4, 5)) == UNKNOWN) and np.all(encode(np.zeros((4, 5), bool), (4, 5)) == UNKNOWN)


def test_training_walls_are_unknown_moved_or_scarless_as_readers_and_models_give_them():
    labels = _ring()
    true_wall = np.isin(labels, (L.MYOCARDIUM, L.SCAR))
    scar = labels == L.SCAR
    far_from_wall = ndimage.distance_transform_edt(~true_wall) > MAX_SHIFT_PX + 0.5

    reach = MAX_SHIFT_PX + 0.5
    # scar that no border move of the wall (with scar) or of the myocardium (without) can reach
    deep_scar = scar & (ndimage.distance_transform_edt(labels != L.MYOCARDIUM) > reach) & (ndimage.distance_transform_edt(true_wall) > reach)
    assert deep_scar.sum() >= 10
    rng = np.random.default_rng(0)
    kinds = {"unknown": 0, "with scar": 0, "without scar": 0}
    for _ in range(400):
        given = training_myocardium(labels, rng)
        if given is None:
            kinds["unknown"] += 1
            continue
        assert given.shape == labels.shape and given.any()
        assert not (given & far_from_wall).any()  # the border moves by at most MAX_SHIFT_PX
        kinds["with scar" if given[deep_scar].all() else "without scar"] += 1
        if not given[deep_scar].all():
            assert not given[deep_scar].any()  # the scar is left out as a whole, not in pieces
    assert abs(kinds["unknown"] / 400 - 0.25) < 0.06
    assert abs(kinds["without scar"] / 400 - 0.20) < 0.06


def test_an_added_myocardium_input_starts_at_zero_weight_so_the_model_starts_where_it_stood(tmp_path):
    data, config, two, myo, logs = train_then_add_an_input(tmp_path, myocardium_input=True)
    assert any("myocardium input starts with zero weights" in line for line in logs)
    assert myo.myocardium_input and myo.metadata["scarenhance"]["myocardium_input"] is True
    assert myo.metadata["network_data_format"]["inputs"]["image"]["num_channels"] == 3
    assert json.loads((tmp_path / "three" / "configs" / "inference.json").read_text())["network_def"]["myocardium_input"]
    torch.manual_seed(3)
    x, t = torch.rand(2, 2, 32, 32) * 2 - 1, torch.tensor([20, 200])
    for given in (torch.zeros(2, 1, 32, 32), torch.ones(2, 1, 32, 32), -torch.ones(2, 1, 32, 32)):
        with torch.no_grad():
            torch.testing.assert_close(myo(torch.cat([x, given], 1), t), two(x, t))
    with pytest.raises(InputError, match="--myocardium-input"):  # and it cannot start a run without the input
        train_diffusion(data, tmp_path / "back", DiffusionTrainConfig(**{**config.__dict__, "init_from": str(tmp_path / "three")}),
                        device="cpu", log=lambda m: None)


def test_the_network_refuses_inputs_without_the_channel_it_takes():
    net = ConditionalDenoiser(prediction="residual", myocardium_input=True, **TINY).eval()
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(1, 2, 16, 16), torch.tensor([5]))
    assert network_def("cpu-small", "residual", myocardium_input=True)["myocardium_input"] is True
    assert "myocardium_input" not in network_def("cpu-small", "residual")


def test_the_sampler_gives_the_myocardium_to_networks_that_take_it_and_unknown_when_none_is_given():
    x0, mask = _crops(n=2)
    given = np.where(mask > 0, 1.0, -1.0).astype(np.float32)
    for takes, myocardium, expected in ((True, given, given), (True, None, np.full_like(given, UNKNOWN)), (False, given, None)):
        spy = _Spy(takes)
        sample(spy, x0, mask, make_schedule(), lam=10, k=2, steps=2, seed=0, myocardium=myocardium)
        for x in spy.seen:
            if expected is None:
                assert x.shape[1] == 2
            else:
                assert x.shape[1] == 3
                np.testing.assert_array_equal(x[:, 2].numpy(), np.concatenate([expected, expected]))


def test_the_train_step_puts_the_crops_myocardium_in_the_third_channel():
    pair = _pair()
    dataset = CropDataset([pair], crop_size=32, length=4, seed=1, myocardium=True)
    items = [dataset[i] for i in range(4)]
    batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
    assert set(np.unique(batch["myo_in"].numpy())) <= {-1.0, 0.0, 1.0}
    spy = _Spy(True)
    make_train_step(make_schedule(), 300)(spy, batch)
    torch.testing.assert_close(spy.seen[0][:, 2:3], batch["myo_in"])


def test_crops_without_the_input_are_the_crops_they_always_were():
    pair = _pair()
    plain = CropDataset([pair], crop_size=32, length=3, seed=4)
    mine = CropDataset([pair], crop_size=32, length=3, seed=4, myocardium=True)
    first_plain, first_mine = plain[0], mine[0]
    assert "myo_in" not in first_plain
    for key in ("x0", "y0", "mask", "scar", "myo"):
        torch.testing.assert_close(first_plain[key], first_mine[key])


def test_enhance_gives_each_slice_its_own_wall_and_unknown_where_a_slice_has_none():
    from scarenhance.diffusion import enhance_scar

    labels = np.stack([_ring(48), _ring(48)])
    image = sitk.GetImageFromArray((100 + 50 * (labels == L.SCAR) + 80 * (labels == L.BLOOD)).astype(np.int16))
    image.SetSpacing((1.5, 1.5, 8.0))
    roi = sitk.GetImageFromArray(L.heart_mask(labels).astype(np.uint8))
    roi.CopyInformation(image)
    wall = np.isin(labels, (L.MYOCARDIUM, L.SCAR))
    wall[1] = False  # the reader gave no wall on the second slice
    spy = _Spy(True)
    spy.multiple_of = 4
    enhance_scar(image, roi, model=spy, lam=10, k=1, steps=1, seed=0, device="cpu", myocardium=wall)
    channel = spy.seen[0][:, 2].numpy()
    assert set(np.unique(channel[0])) == {-1.0, 1.0} and np.all(channel[1] == UNKNOWN)
    with pytest.raises(InputError, match="myocardium mask has shape"):
        enhance_scar(image, roi, model=spy, lam=10, k=1, steps=1, seed=0, device="cpu", myocardium=wall[:, :10])


def test_the_command_line_flag_reaches_the_config(monkeypatch, tmp_path):
    from scarenhance import cli
    import scarenhance.diffusion.train as train

    seen = {}
    monkeypatch.setattr(train, "train_diffusion", lambda data, out, config, **kw: seen.setdefault("config", config))
    cli.main(["train-diffusion", "--data", str(_data(tmp_path)), "--out", str(tmp_path / "m"), "--myocardium-input"])
    assert seen["config"].myocardium_input is True


def _pair():
    labels = _ring(48)
    image = (40 + 100 * (labels == L.SCAR) + 120 * (labels == L.BLOOD)).astype(np.float32)
    return SlicePair("case", 0, image, image.copy(), L.heart_mask(labels), labels)

