"""Which pixels the training loss hears: Table 2's ablation (the whole-image model, m = 1, learns from every
pixel, the localized one only from the ROI) and the optional tissue weights inside the ROI."""

import pytest
import torch

from scarenhance.diffusion.schedule import make_schedule
from scarenhance.diffusion.train import make_train_step
from scarenhance.errors import InputError


def batch():
    mask = torch.zeros(4, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    x0 = mask * 2 - 1  # +1 inside the ROI, -1 outside: lets the stand-in network tell them apart
    return {"x0": x0, "y0": x0.clone(), "mask": mask}


def wrong_outside(x, t, roi=None):
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


def test_from_original_steps_start_from_the_original_and_score_against_the_target():
    """from_original=1: the network's noisy input carries none of the enhancement (it was noised from x_0),
    and the exact answer is the noise measured against the target, ε* = (y_t − √ᾱ·y_0)/√(1−ᾱ)."""
    schedule = make_schedule()
    abar = schedule.alphas_cumprod.float()
    b = batch()
    b["y0"] = b["x0"] + 0.3 * b["mask"]  # the target brightens the ROI
    inside = b["mask"].bool()

    def oracle(x, t, roi=None):  # knows y_0; also records how much of the change the noisy input still carries
        a = abar[t].view(-1, 1, 1, 1)
        seen["carried"] = float(((x[:, :1] - a.sqrt() * b["x0"]) / a.sqrt())[inside].mean())
        seen["t_min"] = int(t.min())
        return (x[:, :1] - a.sqrt() * b["y0"]) / (1 - a).sqrt()

    for share, carried in ((1.0, 0.0), (0.0, 0.3)):
        seen = {}
        torch.manual_seed(0)
        assert float(make_train_step(schedule, 400, from_original=share)(oracle, b)) < 1e-6
        assert abs(seen["carried"] - carried) < 0.15, (share, seen)  # noise: SD ≈ 0.04
    torch.manual_seed(0)
    make_train_step(schedule, 400, from_original=1.0)(oracle, b)
    assert seen["t_min"] >= 100


def test_tissue_weights_count_scar_and_myocardium_pixels_more_and_one_is_the_papers_loss():
    b = batch()
    b["scar"], b["myo"] = torch.zeros_like(b["mask"]), torch.zeros_like(b["mask"])
    b["scar"][:, :, 4:6, 4:12] = 1  # 16 of the 64 ROI pixels
    b["myo"][:, :, 6:8, 4:12] = 1  # another 16; the remaining 32 are "blood"

    def wrong_on_scar(x, t, roi=None):  # a stand-in network that is right except on scar (without seeing it)
        return torch.where(b["scar"] > 0, torch.full_like(x[:, :1], 3.0), torch.zeros_like(x[:, :1]))

    def loss(**kw):
        torch.manual_seed(0)
        torch.randint(0, 1000, (4,))  # the step draws t, then ε
        eps = torch.randn_like(b["y0"])
        torch.manual_seed(0)
        return float(make_train_step(make_schedule(), 1000, **kw)(wrong_on_scar, b)), eps

    plain, eps = loss()
    inside, scar, myo = b["mask"] > 0, b["scar"] > 0, b["myo"] > 0
    err = torch.where(scar, (3.0 - eps) ** 2, eps**2)
    blood = inside & ~scar & ~myo
    assert plain == pytest.approx(float(err[inside].mean()), rel=1e-5)
    weighted, _ = loss(scar_weight=4.0, myo_weight=2.0)  # Σ w·e² / Σ w over the ROI, per sample (all alike here)
    expected = (err[blood].sum() + 4 * err[scar].sum() + 2 * err[myo].sum()) / (4 * (32 + 4 * 16 + 2 * 16))
    assert weighted == pytest.approx(float(expected), rel=1e-5)
    assert weighted > plain
    with pytest.raises(InputError, match="tissue weights"):
        make_train_step(make_schedule(), 1000, scar_weight=-1)
