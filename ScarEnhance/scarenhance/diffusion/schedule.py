"""The noise schedule: MONAI's linear β from 1e-4 to 0.02 over T = 1000 steps (paper §2.2, §3.2).

Timesteps follow MONAI's convention: index t = 0 … T−1 stands for the paper's step t+1, so
`alphas_cumprod[t]` is the paper's ᾱ_{t+1}. Partial diffusion to the paper's λ therefore noises to
index λ−1 and runs the reverse chain over indices λ−1, …, 0 (λ network calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # T and the checks of λ need no torch (fast command-line errors); the tables do
    import torch

T = 1000
BETA_START = 1e-4
BETA_END = 0.02


@dataclass(frozen=True)
class Schedule:
    """Per-step tables (float64, shape (T,)) and MONAI's scheduler they came from."""

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    scheduler: "object"  # monai.networks.schedulers.DDPMScheduler, for add_noise

    @property
    def num_train_timesteps(self) -> int:
        return int(self.betas.shape[0])

    def alpha_bar(self, t: int) -> float:
        """ᾱ at index t; t = −1 means "before any noise" (ᾱ = 1)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])


def make_schedule(num_train_timesteps: int = T, beta_start: float = BETA_START, beta_end: float = BETA_END) -> Schedule:
    """The paper's linear schedule, built by monai.networks.schedulers.DDPMScheduler."""
    from monai.networks.schedulers import DDPMScheduler

    scheduler = DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        schedule="linear_beta",
        beta_start=beta_start,
        beta_end=beta_end,
        clip_sample=True,  # predicted x̂0 is clipped to the network range [-1, 1]
    )
    # MONAI builds float32 tables; the sampler does its scalar arithmetic in float64 from the same values.
    return Schedule(
        betas=scheduler.betas.double(),
        alphas=scheduler.alphas.double(),
        alphas_cumprod=scheduler.alphas_cumprod.double(),
        scheduler=scheduler,
    )
