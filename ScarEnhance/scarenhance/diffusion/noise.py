"""Localized forward noise and the ROI-normalised loss (paper eqs. 3 and 5).

Noise lives only inside the heart ROI m:  y_t = √ᾱ_t · y_0 + √(1 − ᾱ_t) · m · ε.
Outside the ROI y_t = √ᾱ_t · y_0 exactly: scaled, but carrying no noise.
"""

from __future__ import annotations

import torch

from .schedule import Schedule


def add_localized_noise(y0: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """y_t for clean images y0 (B, C, H, W) in [-1, 1], ROI mask (B, 1, H, W) in {0, 1}, noise ε like y0,
    timestep indices t (B,) in 0 … T−1. Uses MONAI's DDPMScheduler.add_noise with the masked noise m·ε."""
    return schedule.scheduler.add_noise(original_samples=y0, noise=noise * mask, timesteps=t)


def masked_error(eps_hat: torch.Tensor, eps: torch.Tensor, mask: torch.Tensor, weight: "torch.Tensor | None" = None,
                 sample_weight: "torch.Tensor | None" = None, norm: int = 2) -> torch.Tensor:
    """Mean over the batch of Σ|(ε̂ − ε)·m|^norm / Σm per sample: the error averaged over ROI pixels, so a
    small heart weighs as much as a large one. Pixels outside the ROI contribute nothing.
    norm: 2 is the paper's squared error; 1 the absolute error (see DiffusionTrainConfig.loss_norm).
    Shapes (B, C, H, W), mask (B, 1, H, W); a sample with an empty mask contributes 0.
    weight: optional (B, 1, H, W) per-pixel weights ≥ 0; the error is then the weighted mean over the ROI,
    Σ w·m·|ε̂ − ε|^norm / Σ w·m (w = 1 everywhere is the plain loss).
    sample_weight: optional (B,) weights ≥ 0 of each sample's error (e.g. by timestep) in the batch mean."""
    if norm not in (1, 2):
        raise ValueError(f"the loss norm must be 1 or 2, got {norm!r}")
    if weight is not None:
        mask = mask * weight
    diff = eps_hat.float() - eps.float()
    err = (diff.abs() if norm == 1 else diff**2) * mask
    dims = tuple(range(1, err.ndim))
    area = (mask.expand_as(err)).sum(dim=dims).clamp_min(1e-6)  # an empty ROI: 0 / tiny = 0
    per_sample = err.sum(dim=dims) / area
    if sample_weight is not None:
        per_sample = per_sample * sample_weight.to(per_sample)
    return per_sample.mean()
