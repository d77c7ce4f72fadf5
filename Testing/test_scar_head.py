"""The denoiser's training-only scar head (network.py scar_head=True, train.py --scar-head-weight).

A second output channel gives scar logits; their cross-entropy against the labels, over the ROI, teaches the
shared features where to brighten. Inference never sees it: forward returns ε̂ alone.
"""

import json
import math

import pytest
import torch
from torch import nn

from scarenhance.diffusion.network import ConditionalDenoiser, network_def
from scarenhance.diffusion.schedule import make_schedule
from scarenhance.diffusion.train import DiffusionTrainConfig, make_train_step, scar_head_loss, train_diffusion
from scarenhance.errors import InputError

from test_diffusion import TINY
from test_loss_norm import fit_on_one_batch
from test_roi_normalised_input import _data


def test_forward_gives_the_noise_alone_and_the_logits_only_when_asked():
    torch.manual_seed(0)
    net = ConditionalDenoiser(prediction="residual", scar_head=True, **TINY).eval()
    x, t = torch.rand(2, 2, 16, 16) * 2 - 1, torch.tensor([30, 300])
    with torch.no_grad():
        eps = net(x, t)
        eps_too, logits = net(x, t, with_scar=True)
    assert eps.shape == logits.shape == (2, 1, 16, 16)
    torch.testing.assert_close(eps, eps_too)
    with pytest.raises(ValueError, match="no scar head"):
        ConditionalDenoiser(**TINY)(x, t, with_scar=True)


def test_the_loss_is_the_cross_entropy_over_the_roi_pixels_only():
    """Logit 0 everywhere costs ln 2 a pixel; confident wrong logits outside the ROI cost nothing."""
    scar = torch.zeros(1, 1, 4, 4)
    scar[..., 0, :] = 1
    roi = torch.zeros(1, 1, 4, 4)
    roi[..., :2, :] = 1
    logits = torch.zeros(1, 1, 4, 4)
    logits[..., 2:, :] = 50.0  # "scar" with certainty where no pixel is scar, outside the ROI
    assert float(scar_head_loss(logits, scar, roi)) == pytest.approx(math.log(2), rel=1e-6)
    logits[..., 0, :] = 3.0  # the ROI's scar row right with confidence 3, its other row still at 0
    want = (4 * math.log1p(math.exp(-3.0)) + 4 * math.log(2)) / 8
    assert float(scar_head_loss(logits, scar, roi)) == pytest.approx(want, rel=1e-6)


class _TwoNumbers(nn.Module):
    """A stand-in U-Net: a learned change r on channel 0 and a learned scar logit c on channel 1."""

    def __init__(self):
        super().__init__()
        self.r = nn.Parameter(torch.zeros(()))
        self.c = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        n, _, h, w = x.shape
        return torch.stack([self.r.expand(n, h, w), self.c.expand(n, h, w)], dim=1)


def _fitted_logit(weight: float) -> float:
    """30 % of the ROI is scar; every pixel outside it is labelled scar too, and must not count."""
    torch.manual_seed(0)
    x0 = torch.full((8, 1, 10, 10), -0.5)
    roi, scar = torch.zeros_like(x0), torch.zeros_like(x0)
    roi[..., :, :5] = 1
    scar[..., :3, :5] = 1
    scar[..., :, 5:] = 1
    batch = {"x0": x0, "y0": x0.clone(), "mask": roi, "scar": scar, "myo": roi - scar * roi}
    net = ConditionalDenoiser(prediction="residual", scar_head=True, **TINY)
    net.unet = _TwoNumbers()
    step = make_train_step(make_schedule(), 400, snr_gamma=5.0, loss_norm=1, scar_head_weight=weight)
    fit_on_one_batch(net, step, batch, 300, 0.02)
    return float(net.unet.c.detach())


def test_the_head_learns_the_scar_share_of_the_roi_and_nothing_without_its_weight():
    assert _fitted_logit(0.5) == pytest.approx(math.log(0.3 / 0.7), abs=0.05)  # BCE's minimiser: logit(0.3)
    assert _fitted_logit(0.0) == 0.0  # no loss on it, no gradient


def test_a_negative_weight_is_refused():
    with pytest.raises(InputError, match="scar head"):
        make_train_step(make_schedule(), 400, scar_head_weight=-0.1)


def test_adding_and_dropping_the_head_keeps_the_models_output(tmp_path):
    """A run with the head, from a model without one, starts (at learning rate 0) where that model stands, its
    folder records the head; a run without the head loss, from that model, drops it and keeps ε̂ too."""
    from scarenhance.diffusion import load_diffusion_model

    data = _data(tmp_path)
    config = DiffusionTrainConfig(network=TINY, prediction="residual", epochs=1, batch_size=2, crop_size=32,
                                  samples_per_epoch=2, lr=1e-3, t_max=300, val_crops=2)
    train_diffusion(data, tmp_path / "plain", config, device="cpu", log=lambda m: None)
    logs = []
    frozen = {**config.__dict__, "lr": 0.0}
    train_diffusion(data, tmp_path / "head", DiffusionTrainConfig(**{**frozen, "scar_head_weight": 0.1,
                                                                    "init_from": str(tmp_path / "plain")}),
                    device="cpu", log=logs.append)
    assert any("scar head added" in line for line in logs)
    train_diffusion(data, tmp_path / "dropped", DiffusionTrainConfig(**{**frozen, "init_from": str(tmp_path / "head")}),
                    device="cpu", log=logs.append)
    assert any("scar head dropped" in line for line in logs)
    plain, head, dropped = (load_diffusion_model(tmp_path / n) for n in ("plain", "head", "dropped"))
    assert head.scar_head and head.metadata["scarenhance"]["scar_head"] is True and not dropped.scar_head
    assert json.loads((tmp_path / "head" / "configs" / "inference.json").read_text())["network_def"]["scar_head"]
    assert "scar_head" not in network_def("cpu-small", "residual")
    torch.manual_seed(3)
    x, t = torch.rand(2, 2, 32, 32) * 2 - 1, torch.tensor([20, 200])
    with torch.no_grad():
        torch.testing.assert_close(head(x, t), plain(x, t))
        torch.testing.assert_close(dropped(x, t), plain(x, t))


def test_the_command_line_flag_reaches_the_config(monkeypatch, tmp_path):
    from scarenhance import cli
    import scarenhance.diffusion.train as train

    seen = {}
    monkeypatch.setattr(train, "train_diffusion", lambda data, out, config, **kw: seen.setdefault("config", config))
    cli.main(["train-diffusion", "--data", str(_data(tmp_path)), "--out", str(tmp_path / "m"), "--scar-head-weight", "0.1"])
    assert seen["config"].scar_head_weight == 0.1
