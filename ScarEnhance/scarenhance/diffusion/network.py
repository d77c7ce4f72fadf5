"""The conditional denoiser ε_θ(y_t, x_0, t): MONAI's DiffusionModelUNet on two channels.

Channel 0 is the noisy target y_t, channel 1 the original slice x_0 (the condition, concatenated as in
SR3 and the paper). Both are in the network range [-1, 1]. Output: the predicted noise ε̂ (one channel).
"""

from __future__ import annotations

import torch
from torch import nn

from .presets import DEFAULT_PRESET, PRESETS  # noqa: F401  (re-exported: callers import them from here)


class ConditionalDenoiser(nn.Module):
    """forward(x: (B, 2, H, W) float in [-1, 1], t: (B,) int timestep indices 0 … T−1) -> ε̂ (B, 1, H, W).

    H and W must be multiples of `multiple_of` (2 ** number of downsamplings).
    """

    def __init__(self, preset: str = DEFAULT_PRESET, **overrides):
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        if preset not in PRESETS:
            raise ValueError(f"unknown diffusion network preset {preset!r}; choose one of {sorted(PRESETS)}")
        self.preset = preset
        self.config = {**PRESETS[preset], **overrides}
        self.unet = DiffusionModelUNet(
            spatial_dims=2, in_channels=2, out_channels=1, use_flash_attention=True, **self.config
        )
        self.multiple_of = 2 ** (len(self.config["channels"]) - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 2:
            raise ValueError(f"expected x of shape (B, 2, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % self.multiple_of or x.shape[-1] % self.multiple_of:
            raise ValueError(f"H and W must be multiples of {self.multiple_of}, got {tuple(x.shape[-2:])}")
        return self.unet(x, t)


def network_def(preset: str = DEFAULT_PRESET, **overrides) -> dict:
    """The bundle's configs/inference.json entry that rebuilds this network."""
    return {"_target_": "scarenhance.diffusion.network.ConditionalDenoiser", "preset": preset, **overrides}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
