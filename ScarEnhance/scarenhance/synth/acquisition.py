"""What a scanner and a registration pipeline do to a clean rendered slice, one function per effect.

Each effect is listed in EFFECTS with the probability it is applied; `corrupt` applies them in
acquisition order. MONAI's transforms are used where MONAI has the effect (bias field, Gibbs ringing,
k-space spikes, Rician noise, coarse dropout); the rest (through-plane partial volume, resolution,
ghosting, bright outliers, registration masks / cropped FOV / shutters, quantisation) is written here.
Every effect takes (image, classes, rng, settings) and returns the new (image, classes): only the
zeroing effects change the classes (no heart is left where the image was blanked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage


@dataclass
class AcquisitionRanges:
    pixel_mm: tuple[float, float] = (0.6, 2.5)  # acquired in-plane resolution
    noise: tuple[float, float] = (0.0, 0.12)  # Rician noise SD, relative to the LV blood mean (1.0)
    bias: tuple[float, float] = (0.0, 0.5)  # MONAI bias-field coefficient range
    ghost: tuple[float, float] = (0.02, 0.25)  # ghost replica weight
    gibbs_alpha: tuple[float, float] = (0.2, 0.7)
    outlier_gain: tuple[float, float] = (3.0, 20.0)  # bright outliers, × the blood mean (7–37 × myocardium)
    output_spacing_mm: float = 1.75  # the grid the image is rendered on


Effect = Callable[[np.ndarray, np.ndarray, np.random.Generator, AcquisitionRanges], tuple[np.ndarray, np.ndarray]]


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def resolution(image, classes, rng, r: AcquisitionRanges):
    """Acquired at a random resolution: blurred, and coarser than the grid when the pixel is larger."""
    pixel = rng.uniform(*r.pixel_mm)
    factor = pixel / r.output_spacing_mm
    out = ndimage.gaussian_filter(image, 0.4 * max(factor, 0.5))
    if factor > 1.05:
        small = ndimage.zoom(out, 1.0 / factor, order=1, grid_mode=True, mode="nearest")
        out = ndimage.zoom(small, (image.shape[0] / small.shape[0], image.shape[1] / small.shape[1]), order=1,
                           grid_mode=True, mode="nearest")[: image.shape[0], : image.shape[1]]
    return out.astype(np.float32), classes


def bias_field(image, classes, rng, r: AcquisitionRanges):
    """Surface-coil shading (MONAI RandBiasField: a smooth multiplicative exp(polynomial))."""
    from monai.transforms import RandBiasField

    t = RandBiasField(degree=3, coeff_range=r.bias, prob=1.0)
    t.set_random_state(_seed(rng))
    return np.asarray(t(image[None]))[0].astype(np.float32), classes


def gibbs(image, classes, rng, r: AcquisitionRanges):
    """Truncation ringing at edges (MONAI RandGibbsNoise)."""
    from monai.transforms import RandGibbsNoise

    t = RandGibbsNoise(prob=1.0, alpha=r.gibbs_alpha)
    t.set_random_state(_seed(rng))
    return np.asarray(t(image[None]))[0].astype(np.float32), classes


def kspace_spikes(image, classes, rng, r: AcquisitionRanges):
    """Herringbone stripes from a spike in k-space (MONAI RandKSpaceSpikeNoise)."""
    from monai.transforms import RandKSpaceSpikeNoise

    t = RandKSpaceSpikeNoise(prob=1.0, intensity_range=(4.0, 7.0))
    t.set_random_state(_seed(rng))
    return np.asarray(t(image[None]))[0].astype(np.float32), classes


def ghosting(image, classes, rng, r: AcquisitionRanges):
    """Breathing / arrhythmia ghosts: faint shifted replicas along the phase-encoding axis."""
    axis = int(rng.integers(0, 2))
    n = int(rng.integers(2, 6))
    out = image.copy()
    weight = rng.uniform(*r.ghost)
    for k in (1, -1):
        out += weight * np.roll(image, k * image.shape[axis] // n, axis=axis) / 2
    return out.astype(np.float32), classes


def bright_outliers(image, classes, rng, r: AcquisitionRanges):
    """Small very bright spots outside the LV (fat, vessels, fold-over): what breaks min–max scaling."""
    out = image.copy()
    h, w = image.shape
    outside = classes == 0
    yy, xx = np.mgrid[:h, :w]
    for _ in range(int(rng.integers(1, 8))):
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        if not outside[cy, cx]:
            continue
        radius = rng.uniform(0.5, 4.0)
        spot = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2) & outside
        out[spot] = rng.uniform(*r.outlier_gain)
    return out.astype(np.float32), classes


def rician_noise(image, classes, rng, r: AcquisitionRanges):
    """Magnitude-image noise (MONAI RandRicianNoise): dark tissue gets noisy and biased upwards."""
    from monai.transforms import RandRicianNoise

    std = rng.uniform(*r.noise)
    t = RandRicianNoise(prob=1.0, mean=0.0, std=std, relative=False, sample_std=False)
    t.set_random_state(_seed(rng))
    return np.asarray(t(image[None]))[0].astype(np.float32), classes


def zero_masks(image, classes, rng, r: AcquisitionRanges):
    """Exact zeros as registered LGE carries them: outside a rotated rectangle around the heart, cropped
    corners, or a circular shutter. The heart is kept inside the window, as a registration keeps it."""
    h, w = image.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    heart = np.argwhere(classes > 0)
    cy, cx = heart.mean(axis=0) if len(heart) else (h / 2, w / 2)
    kind = rng.choice(["rectangle", "corners", "shutter"], p=[0.5, 0.3, 0.2])
    if kind == "rectangle":
        t = rng.uniform(-0.5, 0.5)
        du, dv = np.cos(t) * (xx - cx) + np.sin(t) * (yy - cy), -np.sin(t) * (xx - cx) + np.cos(t) * (yy - cy)
        half = [rng.uniform(0.25, 0.6) * w, rng.uniform(0.25, 0.6) * h]
        off = rng.uniform(-0.15, 0.15, 2) * (w, h)
        keep = (np.abs(du - off[0]) <= half[0]) & (np.abs(dv - off[1]) <= half[1])
    elif kind == "corners":
        keep = np.ones((h, w), bool)
        for corner in range(4):
            if rng.random() < 0.6:
                size = rng.uniform(0.2, 0.6) * (h + w) / 2
                y0, x0 = (0 if corner < 2 else h - 1), (0 if corner % 2 == 0 else w - 1)
                keep &= np.abs(yy - y0) + np.abs(xx - x0) > size
    else:
        radius = rng.uniform(0.35, 0.7) * min(h, w)
        keep = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    return np.where(keep, image, 0.0).astype(np.float32), np.where(keep, classes, 0).astype(classes.dtype)


def dropout(image, classes, rng, r: AcquisitionRanges):
    """Rectangular zeroed holes (MONAI RandCoarseDropout), e.g. a blanked annotation or a cut-out."""
    from monai.transforms import RandCoarseDropout

    size = max(4, min(image.shape) // 10)
    t = RandCoarseDropout(holes=1, max_holes=4, spatial_size=size, max_spatial_size=size * 3, fill_value=0.0, prob=1.0)
    t.set_random_state(_seed(rng))
    out = np.asarray(t(image[None].copy()))[0].astype(np.float32)  # MONAI fills its input in place
    holes = (out == 0) & (image != 0)
    return out, np.where(holes, 0, classes).astype(classes.dtype)


def quantise(image, classes, rng, r: AcquisitionRanges):
    """Stored as int16 (any scale) or as 8-bit: rounding to the file's integer steps."""
    if rng.random() < 0.6:
        top = rng.uniform(100, 4000)
    else:
        top = 255.0
    scale = top / max(float(np.percentile(image, 99.9)), 1e-6)
    out = np.clip(np.rint(np.clip(image, 0, None) * scale), 0, 32767 if top > 255 else 255)
    return out.astype(np.float32), classes


# name → (probability, effect), in acquisition order
EFFECTS: dict[str, tuple[float, Effect]] = {
    "resolution": (1.0, resolution),
    "gibbs": (0.25, gibbs),
    "ghosting": (0.25, ghosting),
    "kspace_spikes": (0.04, kspace_spikes),
    "bias_field": (0.7, bias_field),
    "rician_noise": (0.9, rician_noise),
    "bright_outliers": (0.6, bright_outliers),
    "zero_masks": (0.5, zero_masks),
    "dropout": (0.08, dropout),
    "quantise": (0.9, quantise),
}


def corrupt(image: np.ndarray, classes: np.ndarray, rng: np.random.Generator, ranges: AcquisitionRanges,
            probabilities: "dict[str, float] | None" = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Apply each effect with its probability (overridden by `probabilities`); returns the names applied."""
    applied = []
    for name, (p, effect) in EFFECTS.items():
        p = (probabilities or {}).get(name, p)
        if rng.random() < p:
            image, classes = effect(image, classes, rng, ranges)
            applied.append(name)
    return image, classes, applied
