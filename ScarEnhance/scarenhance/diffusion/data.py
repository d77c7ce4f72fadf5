"""Training pairs for the diffusion model: (original slice x_0, gamma target y_0, heart ROI m).

Slices stay at their native resolution (as at inference, where pixels outside the ROI must not move).
Each slice with a heart is kept as a window around its ROI (with room for crops), so a dataset of
500-pixel slices fits in memory. `CropDataset` then draws crops centred on a random ROI pixel, with
random flips and 90° turns (exact, so the gamma target stays the gamma target of the crop; intensity
augmentation would not, because γ is not scale-invariant).

Scar focus: scar is a few percent of the ROI, so with ROI-centred crops alone the loss barely sees
the one thing the model must learn (brighten scar, leave myocardium alone). A fraction `scar_focus`
of the crops is therefore centred on a scar pixel of a slice that has scar. This changes only which
crops are drawn; the loss stays the paper's unless training also weights scar or myocardium pixels
(`DiffusionTrainConfig.scar_weight` / `myo_weight`, which read the crops' "scar" and "myo" channels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import numpy as np
import torch

from .. import labels as L
from ..progress import ProgressFn, no_progress
from .myocardium_input import encode as encode_myocardium
from .myocardium_input import training_myocardium

# roi_fn(case) -> sitk.Image mask on the case's grid (e.g. the segmentation model's prediction)
RoiFn = Callable[[object], object]


@dataclass
class SlicePair:
    """One slice (a window around its heart). image/target: (H, W) float32 in [0, 255]; roi: (H, W)
    bool; labels: (H, W) uint8 canonical classes (for CNR reports)."""

    case: str
    index: int
    image: np.ndarray
    target: np.ndarray
    roi: np.ndarray
    labels: np.ndarray


def slice_pairs(
    cases: Iterable,
    gamma_config=None,
    blood_mean: "float | None" = None,
    roi_fn: Optional[RoiFn] = None,
    keep: int = 64,
    progress: Optional[ProgressFn] = None,
) -> list[SlicePair]:
    """SlicePairs of every slice that has ROI pixels.

    cases: `datasets.Case`-like objects with .name, .image and canonical .labels (a list: it is read
    twice when blood_mean is None, which then becomes the dataset's mean blood intensity, paper §2.1).
    roi_fn: None → ROI = blood + myocardium + scar from the labels (ground truth); else a function
    giving the ROI mask for a case (the paper uses the segmentation model's predictions).
    keep: pixels kept around each ROI's bounding box.
    """
    from ..geometry import labels_to_slices, volume_to_slices
    from ..targets import GammaConfig, dataset_blood_mean, make_targets

    progress = progress or no_progress
    cases = list(cases)
    config = gamma_config or GammaConfig()
    if blood_mean is None:
        blood_mean = dataset_blood_mean(cases)
    pairs = []
    for n, case in enumerate(cases):
        stack = volume_to_slices(case.image)
        labels = labels_to_slices(case.labels, stack)
        targets = make_targets(stack.slices, labels, config, blood_mean)
        roi = L.heart_mask(labels) if roi_fn is None else labels_to_slices(roi_fn(case), stack) > 0
        for i in range(stack.num_slices):
            if not roi[i].any():
                continue
            window = _window(roi[i], keep)
            pairs.append(SlicePair(case.name, i, stack.slices[i][window].copy(), targets[i][window].astype(np.float32),
                                   roi[i][window].copy(), labels[i][window].copy()))
        progress((n + 1) / len(cases), f"training pairs: {case.name}")
    return pairs


def _window(mask: np.ndarray, keep: int) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (slice(max(rows[0] - keep, 0), rows[-1] + 1 + keep), slice(max(cols[0] - keep, 0), cols[-1] + 1 + keep))


class CropDataset(torch.utils.data.Dataset):
    """Random crops for training: item i is a crop of pair i mod len(pairs), centred on a random ROI
    pixel. Returns {"x0": (1, s, s), "y0": (1, s, s)} in [-1, 1] and {"mask", "scar", "myo": (1, s, s)} in
    {0, 1} (the ROI, and the labelled scar and myocardium for the optional tissue weights of the loss).

    length: items per epoch (default: one per pair). augment: random flips and 90° turns.
    scar_focus: fraction of crops centred on a scar pixel (see the module docstring).
    Pixels beyond the slice are background (0 on the [0, 255] scale, -1 in network units).
    seed: the random stream of the crops; each DataLoader worker gets its own (`reseed`, called by
    training.workers.seed_worker), else the workers would repeat each other's crops.
    myocardium: also {"myo_in": (1, s, s)}, the network's myocardium input as a reader or model would give
    it (myocardium_input.training_myocardium, drawn anew for every crop).
    """

    def __init__(self, pairs: list[SlicePair], crop_size: int = 64, length: "int | None" = None,
                 augment: bool = True, seed: int = 0, scar_focus: float = 0.0, myocardium: bool = False):
        if not pairs:
            raise ValueError("no training slices with an ROI")
        self.pairs, self.crop_size, self.augment = pairs, int(crop_size), augment
        self.length = int(length or len(pairs))
        self.scar_focus = float(scar_focus)
        self.myocardium = bool(myocardium)
        # (pair, scar pixels inside its ROI) for every pair with any: the centres of scar-focused crops
        self.scarred = [(p, scar) for p in pairs if (scar := p.roi & (p.labels == L.SCAR)).any()]
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Draw the following crops from a new random stream."""
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        if self.scarred and self.rng.random() < self.scar_focus:
            pair, scar = self.scarred[self.rng.integers(len(self.scarred))]
            return crop_pair(pair, self.crop_size, self.rng, self.augment, centre_on=scar, myocardium=self.myocardium)
        return crop_pair(self.pairs[i % len(self.pairs)], self.crop_size, self.rng, self.augment, myocardium=self.myocardium)


def crop_pair(pair: SlicePair, size: int, rng: np.random.Generator, augment: bool,
              centre_on: "np.ndarray | None" = None, myocardium: bool = False) -> dict:
    """One crop of a pair centred on a random pixel of `centre_on` (default: the ROI; see CropDataset);
    with `myocardium`, also the myocardium input "myo_in" (see CropDataset)."""
    rows, cols = np.nonzero(pair.roi if centre_on is None else centre_on)
    j = rng.integers(len(rows))
    r0, c0 = rows[j] - size // 2, cols[j] - size // 2
    H, W = pair.roi.shape
    sr0, sc0, sr1, sc1 = max(r0, 0), max(c0, 0), min(r0 + size, H), min(c0 + size, W)
    part = (slice(sr0, sr1), slice(sc0, sc1))  # only the cropped part of the slice is copied
    labels = np.zeros((size, size), np.uint8)  # background beyond the slice
    labels[sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = pair.labels[part]
    crop = np.zeros((6 if myocardium else 5, size, size), np.float32)
    crop[:3, sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = np.stack([pair.image[part], pair.target[part], pair.roi[part]])
    crop[3], crop[4] = labels == L.SCAR, labels == L.MYOCARDIUM
    if myocardium:
        crop[5] = encode_myocardium(training_myocardium(labels, rng), (size, size))
    if augment:
        crop = np.rot90(crop, k=int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            crop = crop[:, :, ::-1]
    crop = np.ascontiguousarray(crop)
    crop[:2] = crop[:2] / 127.5 - 1.0
    t = torch.from_numpy(crop)
    out = {"x0": t[0:1], "y0": t[1:2], "mask": t[2:3], "scar": t[3:4], "myo": t[4:5]}
    if myocardium:
        out["myo_in"] = t[5:6]
    return out


def centre_crop(batch: dict, side: int) -> dict:
    """The central side × side part of every (B, C, s, s) tensor of a batch of crops. Each crop is centred
    on its chosen pixel (crop_pair), so a smaller window is the same crop with less surroundings."""
    out = {}
    for key, value in batch.items():
        s = value.shape[-1]
        lo = (s - side) // 2
        out[key] = value[..., lo : lo + side, lo : lo + side] if side < s else value
    return out


def random_sides(smallest: int, largest: int, multiple_of: int, seed: int) -> "Callable[[], int]":
    """A stream of window sides drawn uniformly from the multiples of `multiple_of` in [smallest, largest].

    Training on one window size taught the network the make-up of that window: its group norms and
    attention see the whole window, and the same heart in a 192-px window came out several per cent
    brighter than in the 128-px windows it trained on (README: "Windows never larger than the training
    crops")."""
    sides = np.arange(smallest, largest + 1, multiple_of)
    rng = np.random.default_rng([seed, 53])
    return lambda: int(rng.choice(sides))


def fixed_batch(pairs: list[SlicePair], size: int, n: int, seed: int = 0, myocardium: bool = False) -> dict:
    """n crops drawn once with a fixed seed and no augmentation (the validation batch)."""
    rng = np.random.default_rng(seed)
    items = [crop_pair(pairs[i % len(pairs)], size, rng, augment=False, myocardium=myocardium) for i in range(n)]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
