"""Training data for the heart U-Net: site cases or the synth engine → normalised slices → augmented crops.

    cases = load_cases(root, spacing_mm=1.75, policy=intensity.DEFAULT)   # any layout datasets.iter_cases reads
    train, val = split_cases(cases, val_fraction=0.2, seed=0)            # by case, never by slice
    dataset = CropDataset(slices_of(train), crop=128, seed=0)            # site data
    dataset = CropDataset(slices_of_bank(make_bank(6000, seed=1)), crop=128, seed=0)   # randomized synthetic data

Images are normalised exactly as at inference (intensity.normalise on geometry.volume_to_slices'
[0, 255] slices), so the network sees float32 in [0, 1]; targets are the heart classes (0 background,
1 LV blood pool, 2 LV myocardium with scar), whose union is the paper's heart ROI. The class maps here
mark scar as labels.TRAIN_SCAR (myocardium to the network; the loss can weigh it, labels.fold_scar
gives the classes back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..labels import heart_classes
from ..progress import ProgressFn, no_progress
from . import intensity


@dataclass
class CaseSlices:
    """One case at the model's pixel size: images (N, H, W) float32 in [0, 1], classes (N, H, W) uint8 0/1/2,
    and 3 (labels.TRAIN_SCAR) where the myocardium is scar."""

    name: str
    images: np.ndarray
    classes: np.ndarray


def load_cases(root: "str | Path", spacing_mm: float, layout: str = "auto", multiple_of: int = 16,
               policy: dict = intensity.DEFAULT, progress: ProgressFn = no_progress) -> list[CaseSlices]:
    """Read every case under `root` and resample its slices in-plane to `spacing_mm`.

    Slices are padded to a multiple of `multiple_of` so that whole slices can be validated.
    InputError when the folder holds no case or a case has no heart label at all.
    """
    from .. import datasets, geometry

    names = datasets.list_cases(root, layout)
    if not names:
        raise InputError("no cases found", root)
    out = []
    for i, name in enumerate(names):
        case = datasets.load_case(root, name, layout)
        stack = geometry.volume_to_slices(case.image, spacing_mm=spacing_mm, multiple_of=multiple_of)
        classes = heart_classes(geometry.labels_to_slices(case.labels, stack), mark_scar=True)
        if not classes.any():
            raise InputError("the label volume has no heart (blood, myocardium or scar) label", case.label_path)
        out.append(CaseSlices(name=case.name, images=intensity.normalise(stack.slices, policy), classes=classes))
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


def slices_of(cases: list[CaseSlices]) -> tuple[list, list]:
    """(images, classes): every slice of every case, as lists of (H, W) arrays."""
    return [s for c in cases for s in c.images], [s for c in cases for s in c.classes]


def slices_of_bank(bank, policy: dict = intensity.DEFAULT) -> tuple[list, list]:
    """(images, classes) of a synth bank, each image normalised as inference will normalise it, its scar
    marked labels.TRAIN_SCAR."""
    return ([intensity.normalise(im, policy).astype(np.float16) for im in bank.images],
            [heart_classes(canonical, mark_scar=True) for canonical in bank.canonical])


def bank_cases(bank, policy: dict = intensity.DEFAULT, multiple_of: int = 16, per_case: int = 8) -> list[CaseSlices]:
    """A synth bank as validation 'cases' of `per_case` whole slices each, padded to a common size."""
    images, classes = slices_of_bank(bank, policy)
    out = []
    for start in range(0, len(images), per_case):
        chunk = list(range(start, min(start + per_case, len(images))))
        h = max(images[i].shape[0] for i in chunk)
        w = max(images[i].shape[1] for i in chunk)
        h, w = (int(math.ceil(n / multiple_of)) * multiple_of for n in (h, w))
        im = np.zeros((len(chunk), h, w), np.float32)
        cl = np.zeros((len(chunk), h, w), np.uint8)
        for k, i in enumerate(chunk):
            ih, iw = images[i].shape
            im[k, :ih, :iw] = images[i]
            cl[k, :ih, :iw] = classes[i]
        out.append(CaseSlices(name=f"synth_{bank.seed}_{start:05d}", images=im, classes=cl))
    return out


class CropDataset:
    """Random training crops of (H, W) slices: 2 of 3 centred near the heart, 1 of 3 anywhere; random
    flips and quarter turns (the anatomy is already at any angle), and a random intensity change per crop
    (MONAI RandAdjustContrast, RandHistogramShift, RandScaleIntensity) so that the same slice never looks
    the same twice. Item: {"image": (1, c, c) float32, "label": (1, c, c) int64}.

    Every item draws from its own stream, keyed by (seed, index, how many times this index was drawn in
    this process); DataLoader workers are given seeds of their own through `reseed` (training.workers),
    so no two workers, and no two epochs' workers, repeat a crop.
    """

    def __init__(self, images: list, classes: list, crop: int = 128, seed: int = 0, heart_fraction: float = 2 / 3):
        if len(images) != len(classes) or not images:
            raise InputError("the crop dataset needs as many class maps as images, and at least one")
        self.images, self.classes, self.crop, self.seed = images, classes, int(crop), int(seed)
        self.heart_fraction = heart_fraction
        self._draws: dict[int, int] = {}
        self._heart = [np.argwhere(c > 0) for c in classes]
        self._intensity = None

    def reseed(self, seed: int) -> None:
        """Draw the following crops from a new random stream."""
        self.seed, self._draws = int(seed), {}

    def __len__(self) -> int:
        return len(self.images)

    def _augment(self):
        if self._intensity is None:
            import monai.transforms as T

            self._intensity = [T.RandAdjustContrast(prob=0.35, gamma=(0.6, 1.7)),
                               T.RandHistogramShift(num_control_points=(4, 8), prob=0.2),
                               T.RandScaleIntensity(factors=0.25, prob=0.3)]
        return self._intensity

    def __getitem__(self, index: int) -> dict:
        import torch

        draw = self._draws.get(index, 0)
        self._draws[index] = draw + 1
        rng = np.random.default_rng([self.seed, int(index), draw])
        image, classes = self.images[index], self.classes[index]
        c = self.crop
        h, w = image.shape
        heart = self._heart[index]
        if len(heart) and rng.random() < self.heart_fraction:
            cy, cx = heart[rng.integers(len(heart))] + rng.integers(-c // 4, c // 4 + 1, 2)
        else:
            cy, cx = rng.integers(0, h), rng.integers(0, w)
        y0, x0 = int(cy) - c // 2, int(cx) - c // 2
        im = np.zeros((c, c), np.float32)
        cl = np.zeros((c, c), np.int64)
        ys, xs = slice(max(0, y0), min(h, y0 + c)), slice(max(0, x0), min(w, x0 + c))
        dst = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
        im[dst] = image[ys, xs]
        cl[dst] = classes[ys, xs]
        k = int(rng.integers(0, 4))
        flip = bool(rng.random() < 0.5)
        im, cl = np.rot90(im, k), np.rot90(cl, k)
        if flip:
            im, cl = im[:, ::-1], cl[:, ::-1]
        x = np.ascontiguousarray(im)[None]
        for t in self._augment():
            t.set_random_state(int(rng.integers(0, 2**31 - 1)))
            x = np.asarray(t(x), dtype=np.float32)
        x = np.clip(x, 0.0, 1.0)
        return {"image": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                "label": torch.from_numpy(np.ascontiguousarray(cl)[None])}
