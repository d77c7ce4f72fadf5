"""What the commands accept as an LGE volume and as a heart ROI, checked before any model is loaded.

- An LGE volume has at least `MIN_SIDE` x `MIN_SIDE` pixels in a slice (a heart does not fit in less;
  in-plane = the two axes other than `geometry.slice_axes`' slice axis) and is not a label map or
  a mask: a volume of whole numbers with at most `MAX_LABELS` distinct values is refused.
- A heart ROI is a mask or a label map: at most `MAX_LABELS` distinct whole-number values. Any non-zero
  voxel is inside, so 0/1, 0/255 and label maps all work; an image given as the ROI is refused.

Size limits (too large to process) and NaN/Inf are checked when the file is read (`io.read_image`).
Each check raises InputError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import InputError

MIN_SIDE = 16
MAX_LABELS = 16


def check_lge(image: sitk.Image, path: "str | Path | None" = None) -> None:
    """Refuse a volume too small to hold a heart, or a label map / mask given as the LGE image."""
    from .geometry import slice_axes

    shape = image.GetSize()[::-1]  # numpy order
    _, row, col = slice_axes(image)
    if min(shape[row], shape[col]) < MIN_SIDE:
        raise InputError(f"image of {'x'.join(map(str, image.GetSize()))} voxels is too small: a short-axis slice "
                         f"needs at least {MIN_SIDE} x {MIN_SIDE} pixels", path)
    values = few_values(sitk.GetArrayViewFromImage(image), MAX_LABELS)
    if values is not None:
        shown = ", ".join(f"{v:g}" for v in values)
        raise InputError(f"looks like a label map or mask, not an LGE image: it holds only the values {shown}. "
                         "Give the LGE volume as the image (a mask goes to --roi)", path)


def check_roi(roi: sitk.Image, path: "str | Path | None" = None) -> None:
    """Refuse an ROI that is an image rather than a mask or label map."""
    if few_values(sitk.GetArrayViewFromImage(roi), MAX_LABELS) is None:
        raise InputError(f"looks like an image, not a mask: it holds more than {MAX_LABELS} distinct values or "
                         "fractions. The ROI must be a mask (non-zero = inside) or a label map", path)


def few_values(array: np.ndarray, limit: int) -> "np.ndarray | None":
    """The sorted distinct values of `array` when there are at most `limit`, all whole numbers; else None.
    A strided sample answers first, so an ordinary image costs almost nothing."""
    flat = np.asarray(array).ravel()
    if flat.size == 0:
        return np.array([])
    sample = flat[:: max(1, flat.size // 4096)]
    if not _whole(sample) or len(np.unique(sample)) > limit:
        return None
    if not _whole(flat):
        return None
    if np.issubdtype(flat.dtype, np.integer) and int(flat.max()) - int(flat.min()) < 1 << 16:
        lo = int(flat.min())
        counts = np.bincount((flat.astype(np.int64) - lo))  # O(n): label maps can be large
        values = np.nonzero(counts)[0] + lo
    else:
        values = np.unique(flat)
    return values if len(values) <= limit else None


def _whole(values: np.ndarray) -> bool:
    return not np.issubdtype(values.dtype, np.floating) or bool(np.all(values == np.round(values)))
