"""Residual prediction (diffusion/network.py) and min-SNR weighting (diffusion/train.py).

A residual denoiser's U-Net outputs x̂_0 − x_0 and forward turns it into ε̂, so the sampler and the
paper's ε-loss are unchanged; these tests pin that conversion against the sampler's own arithmetic.
"""

import json

import numpy as np
import pytest
import torch

from scarenhance.diffusion.network import ConditionalDenoiser, network_def
from scarenhance.diffusion.noise import add_localized_noise, masked_error
from scarenhance.diffusion.sampler import sample
from scarenhance.diffusion.schedule import make_schedule
from scarenhance.diffusion.train import DiffusionTrainConfig, make_train_step, snr_weights, train_diffusion
from scarenhance.errors import InputError, ModelError

from test_diffusion import TINY, _crops  # the same tiny network and ROI crops as the sampler's tests


@pytest.fixture(scope="module")
def schedule():
    return make_schedule()


class _Constant(torch.nn.Module):
    """Stands in for the U-Net: outputs the same residual r everywhere."""

    def __init__(self, r: float):
        super().__init__()
        self.r = r

    def forward(self, x, t, roi=None):
        return torch.full_like(x[:, :1], self.r)


@pytest.mark.parametrize("steps", [None, 7])
def test_an_untrained_residual_network_changes_nothing(schedule, steps):
    """MONAI zero-initialises the output layer: a fresh residual model returns the slice itself (within float
    rounding), through the full ancestral chain and the fast one. A fresh ε-model does not."""
    torch.manual_seed(0)
    x0, mask = _crops()
    residual = ConditionalDenoiser(prediction="residual", **TINY).eval()
    out = sample(residual, x0, mask, schedule, lam=40, k=2, steps=steps, seed=3)
    assert np.abs(out - x0[None]).max() < 1e-3
    epsilon = ConditionalDenoiser(**TINY).eval()
    with torch.no_grad():  # a trained ε-network has a non-zero output layer; give this one random weights
        for p in epsilon.unet.out.parameters():
            p.normal_(0, 0.5)
    assert np.abs(sample(epsilon, x0, mask, schedule, lam=40, k=1, steps=steps, seed=3) - x0[None]).max() > 0.05


def test_the_sampler_lands_on_the_original_plus_the_predicted_residual(schedule):
    """With the U-Net replaced by a constant residual r, every DDIM step's x̂_0 is x_0 + r, so the chain ends
    at x_0 + r inside the ROI (clipped to [-1, 1]) and at x_0 outside."""
    x0, mask = _crops()
    net = ConditionalDenoiser(prediction="residual", **TINY).eval()
    net.unet = _Constant(0.3)
    out = sample(net, x0, mask, schedule, lam=250, k=1, steps=10, seed=0)[0]
    inside = mask > 0
    np.testing.assert_allclose(out[inside], np.clip(x0 + 0.3, -1, 1)[inside], atol=1e-4)
    np.testing.assert_array_equal(out[~inside], x0[~inside])


def test_residual_eps_is_the_noise_implied_by_x0_plus_r(schedule):
    x0 = torch.rand(3, 1, 8, 8) * 2 - 1
    y0 = x0 + 0.2
    eps = torch.randn_like(x0)
    t = torch.tensor([0, 120, 399])
    yt = add_localized_noise(y0, torch.ones_like(x0), eps, t, schedule)
    net = ConditionalDenoiser(prediction="residual", **TINY)
    net.unet = _Constant(0.2)
    np.testing.assert_allclose(net(torch.cat([yt, x0], 1), t).numpy(), eps.numpy(), atol=2e-3)


def test_snr_weights_are_min_snr_gamma_over_snr(schedule):
    t = torch.tensor([0, 50, 200, 399])
    a = schedule.alphas_cumprod[t]
    snr = a / (1 - a)
    expected = torch.minimum(snr, torch.tensor(5.0)) / snr
    np.testing.assert_allclose(snr_weights(schedule, t, 5.0).numpy(), expected.numpy(), rtol=1e-6)
    assert snr_weights(schedule, t, 0.0) is None
    assert float(snr_weights(schedule, t, 5.0)[-1]) == 1.0  # SNR below γ: the plain loss
    with pytest.raises(InputError, match="snr_gamma"):
        make_train_step(schedule, 400, snr_gamma=-1)


def test_the_weighted_loss_weighs_each_sample_by_its_timestep(schedule, monkeypatch):
    """make_train_step with snr_gamma: the batch loss is the mean of each sample's masked ε-MSE times its weight."""
    torch.manual_seed(1)
    b = {"x0": torch.rand(4, 1, 8, 8) * 2 - 1, "mask": torch.ones(4, 1, 8, 8)}
    b["y0"] = b["x0"] + 0.1
    net = ConditionalDenoiser(prediction="residual", **TINY).requires_grad_(False)  # predicts no change: a known error
    t = torch.tensor([3, 60, 150, 390])
    monkeypatch.setattr(torch, "randint", lambda *a, **k: t)
    torch.manual_seed(2)
    weighted = float(make_train_step(schedule, 400, snr_gamma=5.0)(net, b))
    torch.manual_seed(2)
    eps = torch.randn_like(b["y0"])
    yt = add_localized_noise(b["y0"], b["mask"], eps, t, schedule)
    per_sample = ((net(torch.cat([yt, b["x0"]], 1), t) - eps) ** 2).mean(dim=(1, 2, 3))
    assert weighted == pytest.approx(float((per_sample * snr_weights(schedule, t, 5.0)).mean()), rel=1e-5)
    assert weighted < float(masked_error(net(torch.cat([yt, b["x0"]], 1), t), eps, b["mask"]))  # small t count less


def test_a_residual_model_round_trips_through_its_folder(tmp_path):
    from scarenhance.bundle import build_network, load_bundle, save_bundle

    torch.manual_seed(4)
    net = ConditionalDenoiser("cpu-small", "residual", **TINY)
    definition = network_def("cpu-small", "residual", **TINY)
    assert definition["prediction"] == "residual" and "prediction" not in network_def("cpu-small", **TINY)
    save_bundle(tmp_path / "m", net, definition, {"version": "0.0.1", "scarenhance": {"kind": "scar-diffusion"}})
    loaded, _ = load_bundle(tmp_path / "m", kind="scar-diffusion")
    assert loaded.prediction == "residual"
    x, t = torch.rand(1, 2, 16, 16), torch.tensor([100])
    assert torch.equal(net.eval()(x, t), loaded(x, t))
    with pytest.raises(ModelError, match="prediction"):
        build_network({**definition, "prediction": "x0"})


def test_starting_a_residual_run_from_an_epsilon_model_zeroes_its_output_layer(tmp_path):
    """The features carry over, the output's meaning does not: the new run starts by changing nothing."""
    from scarenhance.diffusion import load_diffusion_model
    from scarenhance.phantom import write_cases

    data = tmp_path / "data"
    write_cases(data, 2, seed=5, n_slices=2, size=(64, 64), spacing=1.6)
    config = DiffusionTrainConfig(network=TINY, epochs=1, batch_size=2, crop_size=32, samples_per_epoch=2, lr=1e-3,
                                  t_max=300, val_crops=2)
    train_diffusion(data, tmp_path / "eps", config, device="cpu", log=lambda m: None)
    logs = []
    frozen = DiffusionTrainConfig(**{**config.__dict__, "lr": 0.0, "prediction": "residual", "snr_gamma": 5.0,
                                      "init_from": str(tmp_path / "eps")})
    train_diffusion(data, tmp_path / "res", frozen, device="cpu", log=logs.append)
    assert any("output layer zeroed" in line for line in logs)
    eps_model, res_model = load_diffusion_model(tmp_path / "eps"), load_diffusion_model(tmp_path / "res")
    assert res_model.prediction == "residual" and res_model.metadata["scarenhance"]["prediction"] == "residual"
    body = [k for k in eps_model.state_dict() if not k.startswith("unet.out.")]
    assert all(torch.equal(eps_model.state_dict()[k], res_model.state_dict()[k]) for k in body)
    assert all(float(p.detach().abs().max()) == 0 for p in res_model.unet.out[-1].parameters())
    inference = json.loads((tmp_path / "res" / "configs" / "inference.json").read_text())
    assert inference["network_def"]["prediction"] == "residual"
