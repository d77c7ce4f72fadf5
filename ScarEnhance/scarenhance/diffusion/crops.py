"""Crops around the ROI, so the network runs on the heart and its surroundings, not the whole slice.

Every window of a stack has one common size (so windows batch together): the largest ROI bounding box
of the stack plus a margin on each side, rounded up to a multiple of the U-Net's downsampling factor,
and at least `min_size`. With `max_size` the side is at most that: a slice whose ROI box does not fit
with at least 8 px a side is covered by overlapping windows (at most half a window apart), blended where
they overlap.
Each window is centred on its slice's ROI box when one fits. The stack is padded first, so a window
near the border never leaves the array; padding uses a constant (the background value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CropPlan:
    """Where the windows lie.

    slice_indices: (M,) the slice of each window; only slices with ROI pixels have windows, and a slice
    whose ROI does not fit in one window has several.
    corners: (M, 2) top-left (row, col) of each window in the *padded* stack.
    size: (h, w) of every window.
    pad: rows/cols of padding added on every side of each slice before cropping.
    seed_ids: (M,) distinct ids that seed each window's noise (sampler.item_generator): the slice's index for
    its first window, so a stack whose slices fit in one window each is seeded as before tiling existed,
    and the slice count plus a running number for every further window.
    """

    slice_indices: np.ndarray
    corners: np.ndarray
    size: tuple[int, int]
    pad: int
    seed_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.slice_indices)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


MIN_TILED_MARGIN = 8  # px: a box that fits in one window with this much context a side is not tiled


def _starts(lo: int, hi: int, side: int, margin: int) -> list[int]:
    """Window starts along one axis for the ROI box [lo, hi): one window centred on it when the box fits with
    at least min(margin, MIN_TILED_MARGIN) px a side (a box just over the size keeps one window, with less
    margin, rather than two), else windows at most half a window apart covering the box and its margin."""
    if hi - lo + 2 * min(margin, MIN_TILED_MARGIN) <= side:
        return [(lo + hi) // 2 - side // 2]
    lo, hi = lo - margin, hi + margin
    n = math.ceil((hi - lo - side) / max(side // 2, 1)) + 1
    return [int(round(x)) for x in np.linspace(lo, hi - side, n)]


def plan_crops(mask: np.ndarray, margin: int = 16, multiple_of: int = 1, min_size: int = 0, max_size: int = 0) -> CropPlan:
    """Plan windows for a boolean ROI stack (N, H, W). Slices without ROI get no window.

    margin: pixels of context kept on each side of the ROI box. min_size: lower bound on each window side.
    max_size: upper bound (0: none; never below min_size): larger ROIs are tiled (module docstring).
    Raises ValueError if no slice has an ROI pixel.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be (N, H, W), got shape {mask.shape}")
    slices = np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))
    if len(slices) == 0:
        raise ValueError("the ROI is empty: no slice has a pixel inside it")
    boxes = []
    for i in slices:
        rows = np.flatnonzero(mask[i].any(axis=1))
        cols = np.flatnonzero(mask[i].any(axis=0))
        boxes.append((rows[0], rows[-1] + 1, cols[0], cols[-1] + 1))
    boxes = np.array(boxes)
    sides = []
    for extent in ((boxes[:, 1] - boxes[:, 0]).max(), (boxes[:, 3] - boxes[:, 2]).max()):
        side = _round_up(max(int(extent) + 2 * margin, min_size, 1), multiple_of)
        if max_size:
            side = min(side, _round_up(max(max_size, min_size, 1), multiple_of))
        sides.append(side)
    h, w = sides
    pad = max(h, w) + margin  # enough for any window around an ROI box to stay inside the padded slice
    indices, corners, seed_ids = [], [], []
    further = len(mask)  # the seed id of the next window after a slice's first
    for i, (r0, r1, c0, c1) in zip(slices, boxes):
        windows = [(r, c) for r in _starts(r0, r1, h, margin) for c in _starts(c0, c1, w, margin)]
        for n, (r, c) in enumerate(windows):
            indices.append(i)
            corners.append((r + pad, c + pad))
            seed_ids.append(int(i) if n == 0 else further)
            further += n > 0
    return CropPlan(slice_indices=np.array(indices), corners=np.array(corners, dtype=np.int64), size=(int(h), int(w)),
                    pad=int(pad), seed_ids=np.array(seed_ids, dtype=np.int64))


def extract_crops(stack: np.ndarray, plan: CropPlan, fill: float = 0.0) -> np.ndarray:
    """(M, h, w) windows of `stack` (N, H, W); pixels beyond the slice take the value `fill`."""
    p = plan.pad
    slices, rows = np.unique(plan.slice_indices, return_inverse=True)  # each slice padded once, however many windows
    padded = np.pad(stack[slices], ((0, 0), (p, p), (p, p)), mode="constant", constant_values=fill)
    h, w = plan.size
    return np.stack([padded[rows[j], r : r + h, c : c + w] for j, (r, c) in enumerate(plan.corners)])


def _taper(h: int, w: int) -> np.ndarray:
    """Blending weight of a window: 1 at its border rising linearly to its centre, so where windows overlap
    each pixel leans on the windows that see most around it."""
    def ramp(n: int) -> np.ndarray:
        return np.minimum(np.arange(1, n + 1), np.arange(n, 0, -1)).astype(np.float64)

    return np.outer(ramp(h), ramp(w))


def paste_crops(stack: np.ndarray, crops: np.ndarray, plan: CropPlan, mask: "np.ndarray | None" = None) -> np.ndarray:
    """A copy of `stack` (N, H, W) with the windows written back; with `mask` (N, H, W) only masked
    pixels change, so everything outside the ROI keeps its exact value. A pixel under one window takes
    that window's value exactly; one under several, their taper-weighted mean (_taper)."""
    out = stack.copy()
    p = plan.pad
    h, w = plan.size
    H, W = stack.shape[1:]
    tiled = len(np.unique(plan.slice_indices)) < len(plan)
    if tiled:  # accumulators for the blend, only when some slice has several windows
        taper = _taper(h, w)
        total, weight = np.zeros(stack.shape, np.float64), np.zeros(stack.shape, np.float64)
        count = np.zeros(stack.shape, np.int32)
    for j, (i, (r, c)) in enumerate(zip(plan.slice_indices, plan.corners)):
        # window rows r…r+h in padded coordinates → r−p … r−p+h in the slice, clipped to the slice
        r0, c0 = r - p, c - p
        sr0, sc0 = max(r0, 0), max(c0, 0)
        sr1, sc1 = min(r0 + h, H), min(c0 + w, W)
        part = (slice(sr0 - r0, sr1 - r0), slice(sc0 - c0, sc1 - c0))
        where = (i, slice(sr0, sr1), slice(sc0, sc1))
        patch = crops[j][part]
        m = np.ones(patch.shape, bool) if mask is None else mask[where]
        out[where][m] = patch[m]
        if tiled:
            total[where][m] += (taper[part] * patch)[m]
            weight[where][m] += taper[part][m]
            count[where][m] += 1
    if tiled:
        shared = count > 1
        out[shared] = total[shared] / weight[shared]
    return out
