"""Segment the heart ROI (blood pool + myocardium + scar) in an LGE volume.

    mask = segment_heart(image)                    # shipped demo model, uint8 0/1 in image's geometry
    mask = segment_heart(image, model="/models/site-seg", dilate_mm=3, device="cuda")

What runs: the volume becomes whole 2D slices at the model's pixel size (geometry.volume_to_slices,
no crop, so an off-centre heart is never cut), the U-Net gives per-pixel probabilities in batches,
those are resampled back onto the input grid (geometry.mask_to_volume, > 0.5), then cleaned on that
grid in millimetres (postprocess.clean_mask_image: largest component, holes, optional dilation).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk
import torch

from ..progress import ProgressFn, check_cancel, no_progress

KIND = "heart-segmentation"


@dataclass
class SegmentationModel:
    """A loaded heart model: the network (eval mode), its metadata and the pre-processing it expects."""

    network: torch.nn.Module
    metadata: dict
    path: "Path | None" = None

    @property
    def spacing_mm(self) -> float:
        return float(self.metadata["scarenhance"]["input"]["spacing_mm"])

    @property
    def multiple_of(self) -> int:
        return int(self.metadata["scarenhance"]["input"].get("multiple_of", 16))

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device


_CACHE: dict[tuple, SegmentationModel] = {}


def load_segmentation_model(path: "str | Path | None" = None, device: "str | torch.device" = "cpu") -> SegmentationModel:
    """Load a heart model folder (a path, a registry id, or None for the shipped default).

    The weights' SHA-256 is checked before torch reads them (ModelError on a mismatch, a truncated
    file or a folder of another kind). Loaded models are cached per folder, device and weights file
    (size and modification time), so a model retrained into the same folder is read again.
    """
    from ..bundle import WEIGHTS, load_bundle
    from ..device import resolve_device
    from ..model_zoo import resolve_model

    folder = resolve_model(path, KIND)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    weights = Path(folder) / WEIGHTS
    stat = weights.stat() if weights.is_file() else None
    key = (str(Path(folder).resolve()), str(dev), stat and (stat.st_size, stat.st_mtime_ns))
    if key not in _CACHE:
        network, meta = load_bundle(folder, kind=KIND, device=dev)
        _CACHE[key] = SegmentationModel(network=network, metadata=meta, path=Path(folder))
    return _CACHE[key]


def predict_slices(network: torch.nn.Module, slices: np.ndarray, batch_size: int = 8, device: "torch.device | None" = None,
                   progress: ProgressFn = no_progress, cancel: Optional[threading.Event] = None) -> np.ndarray:
    """Heart probabilities for (N, H, W) float slices in [0, 1] (H, W multiples of the network's
    strides) → (N, H, W) float32 in [0, 1]. Batched, under inference_mode, mixed precision on CUDA."""
    from ..device import autocast_dtype

    device = device or next(network.parameters()).device
    dtype = autocast_dtype(device)
    out = np.empty(slices.shape, dtype=np.float32)
    n = len(slices)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            check_cancel(cancel)
            x = torch.from_numpy(np.ascontiguousarray(slices[start:start + batch_size], dtype=np.float32))[:, None].to(device)
            if dtype is not None:
                with torch.autocast(device_type=device.type, dtype=dtype):
                    logits = network(x)
            else:
                logits = network(x)
            out[start:start + len(x)] = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
            progress(min(n, start + batch_size) / n, f"segmented {min(n, start + batch_size)}/{n} slices")
    return out


def segment_heart(
    image: sitk.Image,
    model: "SegmentationModel | str | Path | None" = None,
    dilate_mm: float = 0.0,
    device: str = "auto",
    progress: Optional[ProgressFn] = None,
    batch_size: int = 8,
    cancel: Optional[threading.Event] = None,
) -> sitk.Image:
    """Binary heart ROI of a 3D LGE volume: uint8 0/1 with `image`'s exact size, spacing, origin and direction.

    model: a loaded SegmentationModel, a model folder or registry id, or None (the shipped default).
    dilate_mm: grow the ROI in-plane by this many mm (real pixel sizes) so that scar at its edge is kept.
    device: "auto" | "cpu" | "cuda" ("cuda" without a GPU is an InputError).
    """
    from .. import geometry
    from ..device import resolve_device
    from ..errors import InputError
    from .postprocess import clean_mask_image

    progress = progress or no_progress
    if dilate_mm < 0:
        raise InputError(f"the dilation must be ≥ 0 mm, got {dilate_mm}")
    dev = resolve_device(device)
    if not isinstance(model, SegmentationModel):
        model = load_segmentation_model(model, dev)
    elif model.device != dev:  # a copy on `dev`: the caller's (possibly cached) model stays where it is
        import copy

        model = SegmentationModel(copy.deepcopy(model.network).to(dev), model.metadata, model.path)
    progress(0.0, "preparing slices")
    stack = geometry.volume_to_slices(image, spacing_mm=model.spacing_mm, multiple_of=model.multiple_of)
    probs = predict_slices(model.network, stack.slices / np.float32(255.0), batch_size, dev,
                           progress=lambda f, m: progress(0.05 + 0.85 * f, m), cancel=cancel)
    check_cancel(cancel)
    mask = geometry.mask_to_volume(stack, probs)
    progress(0.95, "cleaning the mask")
    out = clean_mask_image(mask, dilate_mm)
    progress(1.0, "heart segmented")
    return out
