"""Per-slice image metrics of the paper (§3.3): CNR, and SSIM / PSNR on crops around the heart; heart Dice.

All images are 2D slices in the paper's [0, 255] scale (float arrays of shape (H, W)); label arrays hold the
canonical classes of `scarenhance.labels`. SSIM and PSNR come from MONAI (Gaussian window 11, σ 1.5,
K1 0.01, K2 0.03, data range 255), so they match the numbers other MONAI users report.
"""

from __future__ import annotations

import math

import numpy as np

from ..labels import BLOOD, CLASS_BLOOD, MYOCARDIUM, SCAR

DATA_RANGE = 255.0
MIN_CROP = 16  # paper §3.3: crops of 16×16 or larger around the ground-truth heart
PSNR_CAP_DB = 100.0  # PSNR of identical crops is infinite; capped so means and JSON stay finite


def cnr(image: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """CNR(a, b) = |mean(image[a]) − mean(image[b])| / std(image[b]) (paper §3.3; population std).

    NaN when either region is empty or region b is perfectly flat (std 0): such slices are left out of means.
    """
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if not a.any() or not b.any():
        return math.nan
    values_b = image[b].astype(np.float64)
    sd = values_b.std()
    if sd == 0:
        return math.nan
    return float(abs(image[a].astype(np.float64).mean() - values_b.mean()) / sd)


def tissue_cnrs(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """CNR(scar, myo) and CNR(scar, blood) of one slice, from its canonical labels."""
    scar = labels == SCAR
    return {"cnr_scar_myo": cnr(image, scar, labels == MYOCARDIUM), "cnr_scar_blood": cnr(image, scar, labels == BLOOD)}


def crop_box(mask: np.ndarray, min_size: int = MIN_CROP) -> tuple[slice, slice]:
    """Bounding box of `mask` (H, W), grown symmetrically to ≥ min_size per side and kept inside the image.

    Raises ValueError for an empty mask (there is no heart to crop around).
    """
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("cannot crop around an empty mask")
    box = []
    for lo, hi, extent in ((rows.min(), rows.max() + 1, mask.shape[0]), (cols.min(), cols.max() + 1, mask.shape[1])):
        size = min(max(hi - lo, min_size), extent)
        lo = int(np.clip(lo - (size - (hi - lo)) // 2, 0, extent - size))
        box.append(slice(lo, lo + size))
    return box[0], box[1]


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Mean SSIM of two (H, W) images (MONAI, Gaussian 11×11 window, σ 1.5); both sides must be ≥ 11 px."""
    import torch
    from monai.metrics import SSIMMetric

    if min(a.shape) < 11:
        raise ValueError(f"SSIM needs crops of at least 11×11 pixels, got {a.shape}")
    metric = SSIMMetric(spatial_dims=2, data_range=data_range, kernel_type="gaussian", win_size=11, kernel_sigma=1.5)
    ta = torch.as_tensor(np.asarray(a, np.float32))[None, None]
    tb = torch.as_tensor(np.asarray(b, np.float32))[None, None]
    return float(metric(ta, tb).item())


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """PSNR in dB of two (H, W) images (MONAI), capped at PSNR_CAP_DB for identical images."""
    import torch
    from monai.metrics import PSNRMetric

    ta = torch.as_tensor(np.asarray(a, np.float64))[None, None]
    tb = torch.as_tensor(np.asarray(b, np.float64))[None, None]
    value = float(PSNRMetric(max_val=data_range)(ta, tb).item())
    return min(value, PSNR_CAP_DB) if not math.isnan(value) else PSNR_CAP_DB


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks of any shape; 1.0 when both are empty (nothing to find, nothing found)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def scar_called_blood(classes: np.ndarray, labels: np.ndarray, min_voxels: int = 5) -> float:
    """Share of the labelled scar voxels (canonical `labels`) that heart-model `classes` call LV blood pool:
    bright scar lost to the blood pool, which the heart ROI's Dice cannot see. NaN below `min_voxels` of scar."""
    scar = np.asarray(labels) == SCAR
    return float(np.mean(np.asarray(classes)[scar] == CLASS_BLOOD)) if scar.sum() >= min_voxels else math.nan


def region_means(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean intensity of remote myocardium and blood pool (NaN where the region is absent)."""
    out = {}
    for name, label in (("myocardium", MYOCARDIUM), ("blood", BLOOD)):
        region = labels == label
        out[name] = float(image[region].astype(np.float64).mean()) if region.any() else math.nan
    return out
