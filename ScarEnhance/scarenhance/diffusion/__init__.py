"""Localized conditional diffusion (paper §2.2–2.3): noise only inside the heart ROI, partial diffusion,
what k samples agree on.

    schedule.py  linear β table (MONAI's DDPMScheduler)     noise.py    masked forward noise and loss
    network.py   the conditional denoiser and its presets   crops.py    ROI crops and their paste-back
    sampler.py   batched partial-diffusion chains           inputs.py   checks of enhance_scar's inputs
    enhance.py   enhance_scar / load_diffusion_model        data.py     training pairs
    agreement.py what the k samples agree on                train.py    training (on scarenhance.training)
"""

__all__ = ["enhance_scar", "load_diffusion_model"]


def __getattr__(name: str):
    """enhance_scar / load_diffusion_model on first use: `diffusion.inputs` and `diffusion.schedule.T` stay
    importable without torch (the command line checks its inputs before loading torch)."""
    if name in __all__:
        from . import enhance

        return getattr(enhance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
