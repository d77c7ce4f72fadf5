"""The heart U-Net: named presets → MONAI `UNet` network definitions (the bundle's ``network_def``).

Input (B, 1, H, W) float in [0, 1] (a slice normalised by intensity.normalise), H and W multiples of 16;
output (B, 3, H, W) logits of background, LV blood pool and LV myocardium (softmax in the loss and at
inference). Round-1 models have one output (the heart ROI's logit, sigmoid) and still load.
The network is fully convolutional, so inference runs on whole slices of any such size.
"""

from __future__ import annotations

import torch

from ..errors import InputError

# Pixel size every slice is resampled to before the network sees it, so a heart spans the same
# number of pixels whatever the scan's resolution (0.7–2 mm in practice).
DEFAULT_SPACING_MM = 1.75
MULTIPLE_OF = 16  # 4 stride-2 levels

PRESETS: dict[str, dict] = {
    # ~0.84 M parameters, 3.4 MB: trains in minutes on 2 CPU cores, what the shipped demo model uses
    "cpu-small": {
        "channels": (16, 32, 64, 128, 256),
        "num_res_units": 1,
        "batch_size": 16,
        "lr": 2e-3,  # a short schedule: a larger step, decayed by the cosine schedule
        "epochs": 16,
        "crop": 128,  # 224 mm at 1.75 mm pixels: the heart and enough of the chest around it
        "validate_every": 2,
    },
    # ~1.9 M parameters, 7.6 MB: the shipped randomized model (≈ 0.2 s per batch of 16 × 128² on 2 CPU cores)
    "cpu-medium": {
        "channels": (24, 48, 96, 192, 384),
        "num_res_units": 1,
        "batch_size": 16,
        "lr": 2e-3,
        "epochs": 30,
        "crop": 128,
        "validate_every": 2,
    },
    # the paper's network (MONAI UNet, channels 64…1024, strides 2: 10.5 M parameters) and schedule
    "gpu-paper": {
        "channels": (64, 128, 256, 512, 1024),
        "num_res_units": 0,
        "batch_size": 64,
        "lr": 1e-3,
        "epochs": 100,
        "crop": 160,
        "validate_every": 1,
    },
}
DEFAULT_PRESET = "cpu-small"


def network_def(preset: str = DEFAULT_PRESET, channels: "tuple[int, ...] | None" = None, num_res_units: "int | None" = None,
                dropout: float = 0.0, out_channels: int = 3) -> dict:
    """The JSON network definition of a preset (optionally with other channel widths)."""
    if preset not in PRESETS:
        raise InputError(f"unknown segmentation preset {preset!r}: choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    channels = tuple(int(c) for c in (channels or p["channels"]))
    if len(channels) < 2 or any(c < 1 for c in channels):
        raise InputError(f"channels must be at least two positive widths, got {channels}")
    return {
        "_target_": "monai.networks.nets.UNet",
        "spatial_dims": 2,
        "in_channels": 1,
        "out_channels": int(out_channels),
        "channels": list(channels),
        "strides": [2] * (len(channels) - 1),
        "num_res_units": int(p["num_res_units"] if num_res_units is None else num_res_units),
        "norm": "batch",
        "dropout": float(dropout),
    }


def build(definition: dict) -> torch.nn.Module:
    """Instantiate a network definition (only MONAI networks are allowed, see bundle.build_network)."""
    from ..bundle import build_network

    return build_network(definition)


def multiple_of(definition: dict) -> int:
    """Slice sizes the network accepts must be multiples of this (the product of its strides)."""
    m = 1
    for s in definition.get("strides", []):
        m *= int(s)
    return m
