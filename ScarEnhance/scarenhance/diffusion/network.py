"""The conditional denoiser ε_θ(y_t, x_0, t): MONAI's DiffusionModelUNet on two channels.

Channel 0 is the noisy target y_t, channel 1 the original slice x_0 (the condition, concatenated as in
SR3 and the paper). Both are in the network range [-1, 1]. Output: the predicted noise ε̂ (one channel).

With prediction="residual" the U-Net's own output is the change r̂ from the condition, x̂_0 = x_0 + r̂,
and forward returns the ε̂ that this x̂_0 implies: ε̂ = (y_t − √ᾱ_t·x̂_0) / √(1 − ᾱ_t). The sampler and
the paper's ε-loss stay exactly as they are; only what the network has to learn changes. The gamma
targets leave the myocardium as it is, so "no change" is the right answer for most ROI pixels, and it is
what a residual network gives from its first step (MONAI zero-initialises the output convolution).
An ε-network has to learn the identity to the precision of a few grey levels (remote myocardium sits near
15 of 255 on real scans) and, where it misses, brightens healthy myocardium.

With roi_normalised=True the U-Net gets a third channel that the network computes itself: the original as
z-scores of its own ROI's intensities (`roi_zscores`). On a real scan min-max scaling puts the whole heart
within 10–40 of 255 under bright outliers, and the first convolution sees scar, myocardium and blood a few
grey levels apart; the third channel shows them as far apart as they are relative to each other, whatever
the scale. The ROI sets only these statistics: its outline is never an input.

With myocardium_input=True x has a third channel, the LV myocardium where one is known (+1 inside, −1
outside, 0 everywhere when unknown; myocardium_input.py): given the wall, where to brighten is mostly
"bright pixels in the wall", which the ROI alone does not tell. The U-Net's inputs are ordered y_t, x_0,
(the ROI z-scores), (the myocardium), so a model gains an input by widening its first convolution.

With scar_head=True the U-Net has a second output channel, logits of "this pixel is scar", trained with an
auxiliary loss on the labels (train.py, `--scar-head-weight`) and never used at inference. Where to brighten
is a scar segmentation the denoiser must make for itself, and the ε-loss teaches it only through noise that
is many times the change; the labels teach the shared features the same decision directly.
"""

from __future__ import annotations

import torch
from torch import nn

from .presets import DEFAULT_PRESET, PREDICTIONS, PRESETS  # noqa: F401  (re-exported: callers import them from here)


# The myocardium channel is multiplied by this before the first convolution. Added to a trained model its
# weights start at zero, and Adam moves a weight by about lr per step whatever its gradient's size: at
# lr 1e-4, 290 steps of a fine-tune of 0.6.0 left them at 1 % of the other inputs' (measured, round 11), so
# the network ignored the wall. The gain lets the same steps give the input ten times the say (the idea of
# an equalised learning rate).
MYOCARDIUM_GAIN = 10.0


class ConditionalDenoiser(nn.Module):
    """forward(x: (B, 2, H, W) float in [-1, 1] ((B, 3, H, W) with the myocardium channel), t: (B,) int
    timestep indices 0 … T−1, roi: (B, 1, H, W) in {0, 1}, needed when roi_normalised) -> ε̂ (B, 1, H, W);
    with with_scar=True (a scar_head network) -> (ε̂, scar logits (B, 1, H, W)).

    H and W must be multiples of `multiple_of` (2 ** number of downsamplings).
    """

    def __init__(self, preset: str = DEFAULT_PRESET, prediction: str = "epsilon", roi_normalised: bool = False,
                 scar_head: bool = False, myocardium_input: bool = False, **overrides):
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        if preset not in PRESETS:
            raise ValueError(f"unknown diffusion network preset {preset!r}; choose one of {sorted(PRESETS)}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; choose one of {list(PREDICTIONS)}")
        self.preset = preset
        self.prediction = prediction
        self.roi_normalised = bool(roi_normalised)
        self.scar_head = bool(scar_head)
        self.myocardium_input = bool(myocardium_input)
        self.conditions = 3 if self.myocardium_input else 2  # channels of x: y_t, x_0, (myocardium)
        self.config = {**PRESETS[preset], **overrides}
        self.unet = DiffusionModelUNet(
            spatial_dims=2, in_channels=self.conditions + int(self.roi_normalised),
            out_channels=2 if self.scar_head else 1, use_flash_attention=True,
            **self.config
        )
        self.multiple_of = 2 ** (len(self.config["channels"]) - 1)
        if prediction == "residual":
            from .schedule import make_schedule

            # moves with the network; not persistent: the schedule is the engine's, never a model file's
            self.register_buffer("alphas_cumprod", make_schedule().alphas_cumprod.float(), persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor, roi: "torch.Tensor | None" = None, with_scar: bool = False):
        if with_scar and not self.scar_head:
            raise ValueError("this network has no scar head (build it with scar_head=True)")
        if x.ndim != 4 or x.shape[1] != self.conditions:
            raise ValueError(f"expected x of shape (B, {self.conditions}, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % self.multiple_of or x.shape[-1] % self.multiple_of:
            raise ValueError(f"H and W must be multiples of {self.multiple_of}, got {tuple(x.shape[-2:])}")
        net_in = x[:, :2]
        if self.roi_normalised:
            if roi is None:
                raise ValueError("this network normalises the original by its ROI: pass roi (B, 1, H, W)")
            net_in = torch.cat([net_in, roi_zscores(x[:, 1:2], roi).to(x.dtype)], dim=1)
        if self.myocardium_input:
            net_in = torch.cat([net_in, MYOCARDIUM_GAIN * x[:, 2:3]], dim=1)
        out = self.unet(net_in, t)
        eps_hat = self._eps(x, t, out[:, :1])
        return (eps_hat, out[:, 1:2]) if with_scar else eps_hat

    def _eps(self, x: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.prediction == "epsilon":
            return out
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        x0_hat = x[:, 1:2].float() + out.float()
        return (x[:, 0:1].float() - a.sqrt() * x0_hat) / (1 - a).sqrt()

    def zero_output(self) -> None:
        """Zero the last convolution (as MONAI initialises it): a residual network then changes nothing."""
        conv = self.unet.out[-1]
        for p in conv.parameters():
            nn.init.zeros_(p)


def roi_zscores(x0: torch.Tensor, roi: torch.Tensor, clip: float = 4.0) -> torch.Tensor:
    """x0 (B, 1, H, W) as z-scores of each item's ROI pixels (roi > 0.5), clipped to ±clip and halved, so the
    heart spans about [-2, 2] whatever its place on the [0, 255] scale. The SD is at least one grey level
    (a flat ROI); an item without ROI pixels gets the mean 0."""
    x = x0.float()
    w = (roi > 0.5).float()
    n = w.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
    mean = (x * w).sum(dim=(1, 2, 3), keepdim=True) / n
    sd = (((x - mean) ** 2 * w).sum(dim=(1, 2, 3), keepdim=True) / n).sqrt().clamp_min(1 / 127.5)
    return ((x - mean) / sd).clamp(-clip, clip) / 2


def network_def(preset: str = DEFAULT_PRESET, prediction: str = "epsilon", roi_normalised: bool = False,
                scar_head: bool = False, myocardium_input: bool = False, **overrides) -> dict:
    """The bundle's configs/inference.json entry that rebuilds this network (ε-models keep their old form)."""
    extra = {} if prediction == "epsilon" else {"prediction": prediction}
    if roi_normalised:
        extra["roi_normalised"] = True
    if scar_head:
        extra["scar_head"] = True
    if myocardium_input:
        extra["myocardium_input"] = True
    return {"_target_": "scarenhance.diffusion.network.ConditionalDenoiser", "preset": preset, **extra, **overrides}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
