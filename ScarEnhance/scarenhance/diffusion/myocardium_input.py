"""The denoiser's optional myocardium input: where the LV wall is, when a reader (or the heart model) knows it.

Inside a heart ROI the denoiser must decide for itself which bright pixels are scar and which are blood
pool (README, "Where to brighten"). Given the LV myocardium, most of that decision is "bright pixels in
the wall": on the benchmark families a plain Otsu threshold finds two to four times more of the scar over
the labelled myocardium than over the ROI. In Slicer the radiologist corrects the heart model's "LV
myocardium" segment before enhancing, so the workflow has such a wall.

Encoding (one channel, network units): +1 inside the given myocardium, −1 outside it, and 0 everywhere
when no myocardium is known, so one model serves both cases.

Training (`training_myocardium`) gives the network what readers and models give it, not the labels:
- unknown (all 0), 25 %: the model must still work from the ROI alone;
- the wall (myocardium + scar), its border moved by up to 2 px and made irregular, 55 %;
- the same with the scar left out, 20 %: the heart model calls a third to a half of bright scar blood
  pool (README, "Keeping bright scar in the myocardium"), and a reader may not correct it all.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .. import labels as L

UNKNOWN = 0.0  # the channel's value everywhere when no myocardium is given
MODES = (("unknown", 0.25), ("wall", 0.55), ("wall without scar", 0.20))
MAX_SHIFT_PX = 2  # how far a hand-corrected border may sit from the true one


def encode(myocardium: "np.ndarray | None", shape: tuple[int, ...]) -> np.ndarray:
    """float32 channel: +1 inside `myocardium`, −1 outside; all UNKNOWN when it is None or empty."""
    if myocardium is None or not np.any(myocardium):
        return np.full(shape, UNKNOWN, np.float32)
    return np.where(np.asarray(myocardium, bool), 1.0, -1.0).astype(np.float32)


def training_myocardium(labels: np.ndarray, rng: np.random.Generator) -> "np.ndarray | None":
    """A myocardium as a reader or model would give it, from canonical labels (H, W); None = unknown."""
    mode = rng.choice([m for m, _ in MODES], p=[p for _, p in MODES])
    if mode == "unknown":
        return None
    wall = (labels == L.MYOCARDIUM) | ((labels == L.SCAR) & (mode == "wall"))
    if not wall.any():
        return None
    return _moved_border(wall, rng)


def _moved_border(wall: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The wall with its border moved by a smooth random field of up to MAX_SHIFT_PX (grown or shrunk in
    places), never emptied."""
    h, w = wall.shape
    coarse = rng.normal(0.0, 1.0, (max(2, h // 16), max(2, w // 16)))
    field = ndimage.zoom(coarse, (h / coarse.shape[0], w / coarse.shape[1]), order=1, grid_mode=True, mode="nearest")[:h, :w]
    field *= rng.uniform(0.0, MAX_SHIFT_PX) / max(float(np.abs(field).max()), 1e-6)
    signed = np.where(wall, -ndimage.distance_transform_edt(wall), ndimage.distance_transform_edt(~wall))
    moved = signed <= field + rng.uniform(-0.5, 0.5)
    return moved if moved.any() else wall
