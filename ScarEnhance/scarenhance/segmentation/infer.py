"""Segment the LV blood pool and myocardium, and the heart ROI (their union), in an LGE volume.

    result = segment(image)                              # shipped default model
    result.roi       uint8 0/1 heart ROI in image's geometry (cleaned, optionally dilated)
    result.labels    uint8 0 / 1 LV blood pool / 2 LV myocardium (None for a round-1 single-output model)
    result.report    plausibility.Report: volume, per-slice areas, roundness, … and warnings
    mask = segment_heart(image, model="/models/site-seg", dilate_mm=3, device="cuda")   # just the ROI

What runs: the volume becomes whole 2D slices at the model's pixel size (geometry.volume_to_slices, no
crop, so an off-centre heart is never cut), normalised as the model was trained (intensity.py), the
U-Net gives per-pixel class probabilities in batches, those are resampled back onto the input grid
(geometry.maps_to_volume) and the most probable class wins; then clean-up on that grid in millimetres
(postprocess.clean_classes) and the plausibility checks (plausibility.py).
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
    def normalisation(self) -> dict:
        from .intensity import policy_of

        return policy_of(self.metadata)

    @property
    def has_classes(self) -> bool:
        """True for models that separate blood pool and myocardium (three outputs)."""
        return int(self.metadata["network_def"].get("out_channels", 1)) == 3

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device


@dataclass
class HeartSegmentation:
    roi: sitk.Image
    labels: "sitk.Image | None"
    report: "object"  # plausibility.Report


_CACHE: dict[tuple, SegmentationModel] = {}


def load_segmentation_model(path: "str | Path | None" = None, device: "str | torch.device" = "cpu") -> SegmentationModel:
    """Load a heart model folder (a path, a registry id, or None for the shipped default).

    The weights' SHA-256 is checked before torch reads them (ModelError on a mismatch, a truncated
    file or a folder of another kind). Loaded models are cached per folder, device and weights file
    (size and modification time), so a model retrained into the same folder is read again.
    """
    from ..bundle import WEIGHTS, load_bundle
    from ..device import resolve_device
    from ..errors import ModelError
    from ..model_zoo import resolve_model

    folder = resolve_model(path, KIND)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    weights = Path(folder) / WEIGHTS
    stat = weights.stat() if weights.is_file() else None
    key = (str(Path(folder).resolve()), str(dev), stat and (stat.st_size, stat.st_mtime_ns))
    if key not in _CACHE:
        network, meta = load_bundle(folder, kind=KIND, device=dev)
        outputs = int(meta["network_def"].get("out_channels", 1))
        if outputs not in (1, 3):
            raise ModelError(f"a heart model has 1 (heart ROI) or 3 (background, blood, myocardium) outputs, this one {outputs}",
                             Path(folder) / "configs/inference.json")
        _CACHE[key] = SegmentationModel(network=network, metadata=meta, path=Path(folder))
    return _CACHE[key]


def predict_probabilities(network: torch.nn.Module, slices: np.ndarray, batch_size: int = 8, device: "torch.device | None" = None,
                          progress: ProgressFn = no_progress, cancel: Optional[threading.Event] = None) -> np.ndarray:
    """Class probabilities for (N, H, W) normalised slices (H, W multiples of the network's strides) →
    (C, N, H, W) float32: C = 3 (background, blood, myocardium), or 2 (background, heart) for a
    single-output model. Batched, under inference_mode, mixed precision where the device has it (device.autocast_dtype)."""
    from ..device import autocast_dtype

    device = device or next(network.parameters()).device
    dtype = autocast_dtype(device)
    n = len(slices)
    out = None
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            check_cancel(cancel)
            x = torch.from_numpy(np.ascontiguousarray(slices[start:start + batch_size], dtype=np.float32))[:, None].to(device)
            if dtype is not None:
                with torch.autocast(device_type=device.type, dtype=dtype):
                    logits = network(x)
            else:
                logits = network(x)
            logits = logits.float()
            if logits.shape[1] == 1:  # round-1 model: P(heart) by sigmoid
                p = torch.sigmoid(logits)
                probs = torch.cat([1 - p, p], dim=1)
            else:
                probs = torch.softmax(logits, dim=1)
            if out is None:
                out = np.empty((probs.shape[1],) + tuple(slices.shape), dtype=np.float32)
            out[:, start:start + len(x)] = probs.cpu().numpy().transpose(1, 0, 2, 3)
            progress(min(n, start + batch_size) / n, f"segmented {min(n, start + batch_size)}/{n} slices")
    return out


def predict_classes(network: torch.nn.Module, slices: np.ndarray, batch_size: int = 8, device: "torch.device | None" = None) -> np.ndarray:
    """(N, H, W) uint8 most probable class per pixel (0 background; 1 blood, 2 myocardium; or 1 heart)."""
    return np.argmax(predict_probabilities(network, slices, batch_size, device), axis=0).astype(np.uint8)


def segment(
    image: sitk.Image,
    model: "SegmentationModel | str | Path | None" = None,
    dilate_mm: float = 0.0,
    device: str = "auto",
    progress: Optional[ProgressFn] = None,
    batch_size: int = 8,
    cancel: Optional[threading.Event] = None,
) -> HeartSegmentation:
    """Heart ROI, class labels and plausibility report of a 3D LGE volume, in `image`'s exact geometry.

    model: a loaded SegmentationModel, a model folder or registry id, or None (the shipped default).
    dilate_mm: grow the ROI in-plane by this many mm (real pixel sizes) so that scar at its edge is kept;
    the class labels are not dilated.
    device: "auto" | "cpu" | "cuda" ("cuda" without a GPU is an InputError).
    """
    from .. import geometry
    from ..device import resolve_device
    from ..errors import InputError
    from .intensity import normalise
    from .plausibility import assess
    from .postprocess import clean_classes

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
    x = normalise(stack.slices, model.normalisation)
    probs = predict_probabilities(model.network, x, batch_size, dev, progress=lambda f, m: progress(0.05 + 0.85 * f, m),
                                  cancel=cancel)
    check_cancel(cancel)
    classes = geometry.maps_to_labels(stack, probs)
    progress(0.95, "cleaning the mask")
    roi, labels = clean_classes(classes, dilate_mm)
    report = assess(roi, labels if model.has_classes else None)
    progress(1.0, "heart segmented")
    return HeartSegmentation(roi=roi, labels=labels if model.has_classes else None, report=report)


def segment_heart(image: sitk.Image, model: "SegmentationModel | str | Path | None" = None, dilate_mm: float = 0.0,
                  device: str = "auto", progress: Optional[ProgressFn] = None, batch_size: int = 8,
                  cancel: Optional[threading.Event] = None) -> sitk.Image:
    """Binary heart ROI of a 3D LGE volume: uint8 0/1 with `image`'s exact size, spacing, origin and direction
    (see `segment` for the arguments, the class labels and the plausibility report)."""
    return segment(image, model, dilate_mm, device, progress, batch_size, cancel).roi
