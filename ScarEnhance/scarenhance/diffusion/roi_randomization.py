"""Random heart ROIs for training the denoiser, so that the ROI's outline tells it nothing about the tissue.

A model trained on exact ground-truth ROIs learns that the ROI's edge is the epicardium and paints
brightness along it (seen on real LGE: a bright band on the outer edge of the ROI). Here every slice's
ROI is the true heart (LV blood + myocardium + scar) changed at random, as clinicians' and models' ROIs
are in practice (the paper's future work: dilated ROIs, hand corrections):
- dilated by 0–10 mm (the paper's proposed fix for scar at the border), 40 %;
- eroded by 0.5–3 mm (a tight ROI that clips the epicardium), 15 %;
- irregular: dilated 0–6 mm with a smoothly wobbling border of ±1–5 mm (hand-drawn), 30 %;
- exact, 15 %.
All distances are in mm on the slice's own pixel grid.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import ndimage

from .. import labels as L

MODES = (("dilated", 0.40), ("eroded", 0.15), ("irregular", 0.30), ("exact", 0.15))


def randomized_roi(canonical: np.ndarray, spacing_mm: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """One slice: canonical labels (H, W) → a random ROI (H, W) bool around its heart (empty stays empty)."""
    heart = L.heart_mask(canonical)
    if not heart.any():
        return heart
    mode = rng.choice([m for m, _ in MODES], p=[p for _, p in MODES])
    outside = ndimage.distance_transform_edt(~heart, sampling=spacing_mm)
    inside = ndimage.distance_transform_edt(heart, sampling=spacing_mm)
    signed = np.where(heart, -inside, outside)  # mm from the heart's border, negative inside
    if mode == "dilated":
        return signed <= rng.uniform(0.0, 10.0)
    if mode == "eroded":
        roi = signed <= -rng.uniform(0.5, 3.0)
        return roi if roi.any() else heart
    if mode == "irregular":
        h, w = heart.shape
        coarse = rng.normal(0.0, 1.0, (max(2, h // 12), max(2, w // 12)))
        wobble = ndimage.zoom(coarse, (h / coarse.shape[0], w / coarse.shape[1]), order=3, grid_mode=True, mode="nearest")[:h, :w]
        wobble *= rng.uniform(1.0, 5.0) / max(float(np.abs(wobble).max()), 1e-6)
        roi = signed <= rng.uniform(0.0, 6.0) + wobble
        roi = ndimage.binary_fill_holes(roi)
        return roi if roi.any() else heart
    return heart


def randomized_roi_volume(canonical: np.ndarray, spacing_zyx: tuple[float, float, float], slice_axis: int,
                          seed: int, name: str) -> np.ndarray:
    """Every slice of a (z, y, x) canonical label volume through randomized_roi; the draws depend only
    on (seed, case name, slice)."""
    moved = np.moveaxis(np.asarray(canonical), slice_axis, 0)
    in_plane = tuple(float(s) for a, s in enumerate(spacing_zyx) if a != slice_axis)
    key = zlib.crc32(name.encode())
    out = np.stack([randomized_roi(moved[k], in_plane, np.random.default_rng([seed, key, k])) for k in range(moved.shape[0])])
    return np.moveaxis(out, 0, slice_axis)
