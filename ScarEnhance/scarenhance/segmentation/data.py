"""Training data for the heart U-Net: dataset cases → 2D slices at the model's pixel size → augmented crops.

    cases = load_cases(root, spacing_mm=1.6)               # any layout datasets.iter_cases reads
    train, val = split_cases(cases, val_fraction=0.2, seed=0)  # by case, never by slice
    dataset = slice_dataset(train, train_transforms(crop=128))

Each slice is scaled to [0, 255] (geometry.volume_to_slices, paper §2.1) and divided by 255, so the
network sees float32 in [0, 1]; the target is the heart ROI (blood + myocardium + scar) as 0/1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..progress import ProgressFn, no_progress


@dataclass
class CaseSlices:
    """One case at the model's pixel size: images (N, H, W) float32 in [0, 1], masks (N, H, W) uint8 0/1."""

    name: str
    images: np.ndarray
    masks: np.ndarray


def load_cases(root: "str | Path", spacing_mm: float, layout: str = "auto", multiple_of: int = 16,
               progress: ProgressFn = no_progress) -> list[CaseSlices]:
    """Read every case under `root` and resample its slices in-plane to `spacing_mm`.

    Slices are padded to a multiple of `multiple_of` so that whole slices can be validated.
    InputError when the folder holds no case or a case has no heart label at all.
    """
    from .. import datasets, geometry
    from ..labels import heart_mask

    names = datasets.list_cases(root, layout)
    if not names:
        raise InputError("no cases found", root)
    out = []
    for i, name in enumerate(names):
        case = datasets.load_case(root, name, layout)
        stack = geometry.volume_to_slices(case.image, spacing_mm=spacing_mm, multiple_of=multiple_of)
        masks = heart_mask(geometry.labels_to_slices(case.labels, stack)).astype(np.uint8)
        if not masks.any():
            raise InputError("the label volume has no heart (blood, myocardium or scar) label", case.label_path)
        out.append(CaseSlices(name=case.name, images=stack.slices / np.float32(255.0), masks=masks))
        progress((i + 1) / len(names), f"read {case.name}")
    return out


def split_cases(cases: list, val_fraction: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """(train, val): a seeded permutation of the cases (sorted by name first), split by case.

    At least one case goes to each side when there are two or more; with val_fraction 0 (or a single
    case) everything trains and nothing validates.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"the validation fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(cases, key=lambda c: c.name)
    n_val = 0 if val_fraction == 0 or len(ordered) < 2 else min(len(ordered) - 1, max(1, math.ceil(val_fraction * len(ordered))))
    order = np.random.default_rng(seed).permutation(len(ordered))
    val = [ordered[i] for i in sorted(order[:n_val])]
    train = [ordered[i] for i in sorted(order[n_val:])]
    return train, val


def slice_items(cases: list[CaseSlices]) -> list[dict]:
    """One dict per slice: {"image": (1, H, W) float32, "label": (1, H, W) float32, "case": name}."""
    items = []
    for c in cases:
        for image, mask in zip(c.images, c.masks):
            items.append({"image": image[None].astype(np.float32), "label": mask[None].astype(np.float32), "case": c.name})
    return items


def train_transforms(crop: int = 128):
    """MONAI dictionary transforms for training: random crops (mostly around the heart) and the
    variation real LGE shows: orientation (any in-plane rotation, flips), heart size (zoom), coil
    shading (bias field), contrast (intensity scale, gamma), noise."""
    import monai.transforms as T

    keys = ("image", "label")
    return T.Compose([
        T.SpatialPadd(keys, spatial_size=(crop, crop)),
        # 2 of 3 crops contain heart pixels at their centre; 1 of 3 is anywhere in the background
        T.RandCropByPosNegLabeld(keys, label_key="label", spatial_size=(crop, crop), pos=2.0, neg=1.0, num_samples=1),
        T.RandAffined(keys, prob=0.8, rotate_range=math.pi, scale_range=0.15, mode=("bilinear", "nearest"),
                      padding_mode="zeros"),
        T.RandFlipd(keys, prob=0.5, spatial_axis=0),
        T.RandFlipd(keys, prob=0.5, spatial_axis=1),
        T.RandBiasFieldd("image", prob=0.3, coeff_range=(0.0, 0.3)),
        T.RandScaleIntensityd("image", prob=0.3, factors=0.2),
        T.RandAdjustContrastd("image", prob=0.3, gamma=(0.7, 1.5)),
        T.RandGaussianNoised("image", prob=0.3, std=0.03),
        T.ToTensord(keys, track_meta=False),
    ])


def slice_dataset(cases: list[CaseSlices], transform=None):
    """A MONAI Dataset of the cases' slices (transform applied on the fly, so every epoch differs)."""
    from monai.data import Dataset

    items = [{k: v for k, v in item.items() if k != "case"} for item in slice_items(cases)]
    return Dataset(items, transform=transform)


def collate(samples: list) -> dict:
    """Stack {"image", "label"} samples (RandCropByPosNegLabeld returns a list per sample)."""
    import torch

    flat = [s for item in samples for s in (item if isinstance(item, list) else [item])]
    return {k: torch.stack([torch.as_tensor(s[k]) for s in flat]) for k in ("image", "label")}
