"""Localized conditional diffusion (paper §2.2–2.3): noise only inside the heart ROI, partial diffusion,
mean of k samples.

    schedule.py  linear β table (MONAI's DDPMScheduler)     noise.py    masked forward noise and loss
    network.py   the conditional denoiser and its presets   crops.py    ROI crops and their paste-back
    sampler.py   batched partial-diffusion chains           inputs.py   checks of enhance_scar's inputs
    enhance.py   enhance_scar / load_diffusion_model        data.py     training pairs
    train.py     training (on scarenhance.training)
"""

from .enhance import enhance_scar, load_diffusion_model

__all__ = ["enhance_scar", "load_diffusion_model"]
