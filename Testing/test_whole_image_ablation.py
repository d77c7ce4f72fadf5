"""Table 2's ablation: the whole-image model (m = 1) learns from every pixel, the localized one only from the ROI."""

import torch

from scarenhance.diffusion.schedule import make_schedule
from scarenhance.diffusion.train import make_train_step


def batch():
    mask = torch.zeros(4, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    x0 = mask * 2 - 1  # +1 inside the ROI, -1 outside: lets the stand-in network tell them apart
    return {"x0": x0, "y0": x0.clone(), "mask": mask}


def wrong_outside(x, t):
    """A 'network' that predicts ε̂ = 0 inside the ROI and nonsense (100) outside."""
    return 100.0 * (x[:, 1:2] < 0).float()


def test_localized_loss_ignores_outside_and_whole_image_loss_does_not():
    schedule = make_schedule()
    torch.manual_seed(0)
    local = float(make_train_step(schedule, 1000)(wrong_outside, batch()))
    torch.manual_seed(0)
    whole = float(make_train_step(schedule, 1000, whole_image=True)(wrong_outside, batch()))
    assert 0.5 < local < 1.5  # E[ε²] over ROI pixels: the nonsense outside is never seen
    assert whole > 1000  # 3/4 of the pixels are outside, each with (100 − ε)²
