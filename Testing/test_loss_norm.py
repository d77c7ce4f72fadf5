"""The absolute-error training loss (DiffusionTrainConfig.loss_norm = 1) against the paper's squared error.

The squared error makes the network predict the mean of the targets that fit its input, the absolute
error their median. These tests pin the arithmetic and then fit a one-number network through the real
train step to a target where 30 % of the ROI is brightened: the mean is 0.3 × the change, the median none.
"""

import pytest
import torch

from scarenhance import cli
from scarenhance.diffusion.network import ConditionalDenoiser
from scarenhance.diffusion.noise import masked_error
from scarenhance.diffusion.schedule import make_schedule
from scarenhance.diffusion.train import make_train_step, snr_weights
from scarenhance.errors import InputError

from test_diffusion import TINY


def test_the_absolute_error_is_the_weighted_mean_of_abs_over_the_roi():
    eps, eps_hat = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    eps_hat[0, 0, 0, 0], eps_hat[0, 0, 0, 1] = 2.0, -1.0
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :2] = 1
    eps_hat[0, 0, 3, 3] = 9.0  # outside the ROI: ignored
    assert masked_error(eps_hat, eps, mask, norm=1).item() == pytest.approx(3.0 / 4)
    assert masked_error(eps_hat, eps, mask, norm=2).item() == pytest.approx(5.0 / 4)
    weight = torch.ones(1, 1, 4, 4)
    weight[0, 0, 0, 0] = 5.0
    assert masked_error(eps_hat, eps, mask, weight, norm=1).item() == pytest.approx((5 * 2.0 + 1.0) / (5 + 3))
    with pytest.raises(ValueError, match="norm"):
        masked_error(eps_hat, eps, mask, norm=3)


def test_the_absolute_error_takes_the_square_root_of_the_min_snr_weight():
    schedule = make_schedule()
    t = torch.tensor([0, 50, 200, 399])
    torch.testing.assert_close(snr_weights(schedule, t, 5.0, 1), snr_weights(schedule, t, 5.0, 2).sqrt())
    with pytest.raises(InputError, match="loss norm"):
        make_train_step(schedule, 400, loss_norm=3)


class _OneNumber(torch.nn.Module):
    """Stands in for the U-Net: one learnable residual, the same at every pixel."""

    def __init__(self):
        super().__init__()
        self.r = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t, roi=None):
        return self.r.expand_as(x[:, :1])


def _fitted_change(loss_norm: int) -> float:
    torch.manual_seed(0)
    x0 = torch.full((8, 1, 10, 10), -0.5)
    y0 = x0.clone()
    y0[:, :, :3, :] += 0.4  # 30 % of every ROI brightened by 0.4, the rest unchanged
    batch = {"x0": x0, "y0": y0, "mask": torch.ones_like(x0)}
    net = ConditionalDenoiser(prediction="residual", **TINY)
    net.unet = _OneNumber()
    fit_on_one_batch(net, make_train_step(make_schedule(), 400, snr_gamma=5.0, loss_norm=loss_norm), batch, 400, 0.01)
    return float(net.unet.r.detach())


def fit_on_one_batch(net, step, batch: dict, steps: int, lr: float) -> None:
    """`steps` Adam steps of `step`'s loss on one fixed batch: what a stand-in network's few numbers settle to."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        step(net, batch).backward()
        optimizer.step()


def test_squared_error_learns_the_mean_change_and_absolute_error_the_median():
    assert _fitted_change(2) == pytest.approx(0.12, abs=0.02)  # 0.3 × 0.4: every pixel brightened a little
    assert abs(_fitted_change(1)) < 0.02  # the likelier reading, no change, everywhere


def test_the_command_line_passes_the_loss_norm():
    args = cli.build_parser().parse_args(["train-diffusion", "--data", "D", "--out", "M", "--loss-norm", "1"])
    assert args.loss_norm == 1
    assert cli.build_parser().parse_args(["train-diffusion", "--data", "D", "--out", "M"]).loss_norm == 2
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train-diffusion", "--data", "D", "--out", "M", "--loss-norm", "3"])
