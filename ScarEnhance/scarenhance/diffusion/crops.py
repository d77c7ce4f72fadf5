"""Crops around the ROI, so the network runs on the heart and its surroundings, not the whole slice.

Every slice of a stack gets a window of one common size (so slices batch together): the largest ROI
bounding box of the stack plus a margin on each side, rounded up to a multiple of the U-Net's
downsampling factor. Each window is centred on its slice's ROI box. The stack is padded first, so a
window near the border never leaves the array; padding uses a constant (the background value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CropPlan:
    """Where the windows lie.

    slice_indices: (M,) indices of the slices that have ROI pixels (the only ones cropped).
    corners: (M, 2) top-left (row, col) of each window in the *padded* stack.
    size: (h, w) of every window.
    pad: rows/cols of padding added on every side of each slice before cropping.
    """

    slice_indices: np.ndarray
    corners: np.ndarray
    size: tuple[int, int]
    pad: int

    def __len__(self) -> int:
        return len(self.slice_indices)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def plan_crops(mask: np.ndarray, margin: int = 16, multiple_of: int = 1, min_size: int = 0) -> CropPlan:
    """Plan windows for a boolean ROI stack (N, H, W). Slices without ROI get no window.

    margin: pixels of context kept on each side of the ROI box. min_size: lower bound on each window side.
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
    h = _round_up(max(int((boxes[:, 1] - boxes[:, 0]).max()) + 2 * margin, min_size, 1), multiple_of)
    w = _round_up(max(int((boxes[:, 3] - boxes[:, 2]).max()) + 2 * margin, min_size, 1), multiple_of)
    pad = max(h, w)  # enough for any window centred on an ROI box to stay inside the padded slice
    centre_r = (boxes[:, 0] + boxes[:, 1]) // 2
    centre_c = (boxes[:, 2] + boxes[:, 3]) // 2
    corners = np.stack([centre_r - h // 2 + pad, centre_c - w // 2 + pad], axis=1)
    return CropPlan(slice_indices=slices, corners=corners.astype(np.int64), size=(int(h), int(w)), pad=int(pad))


def extract_crops(stack: np.ndarray, plan: CropPlan, fill: float = 0.0) -> np.ndarray:
    """(M, h, w) windows of `stack` (N, H, W); pixels beyond the slice take the value `fill`."""
    p = plan.pad
    padded = np.pad(stack[plan.slice_indices], ((0, 0), (p, p), (p, p)), mode="constant", constant_values=fill)
    h, w = plan.size
    return np.stack([padded[j, r : r + h, c : c + w] for j, (r, c) in enumerate(plan.corners)])


def paste_crops(stack: np.ndarray, crops: np.ndarray, plan: CropPlan, mask: "np.ndarray | None" = None) -> np.ndarray:
    """A copy of `stack` (N, H, W) with the windows written back; with `mask` (N, H, W) only masked
    pixels change, so everything outside the ROI keeps its exact value."""
    out = stack.copy()
    p = plan.pad
    h, w = plan.size
    H, W = stack.shape[1:]
    for j, (i, (r, c)) in enumerate(zip(plan.slice_indices, plan.corners)):
        # window rows r…r+h in padded coordinates → r−p … r−p+h in the slice, clipped to the slice
        r0, c0 = r - p, c - p
        sr0, sc0 = max(r0, 0), max(c0, 0)
        sr1, sc1 = min(r0 + h, H), min(c0 + w, W)
        patch = crops[j, sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0]
        if mask is None:
            out[i, sr0:sr1, sc0:sc1] = patch
        else:
            m = mask[i, sr0:sr1, sc0:sc1]
            out[i, sr0:sr1, sc0:sc1][m] = patch[m]
    return out
