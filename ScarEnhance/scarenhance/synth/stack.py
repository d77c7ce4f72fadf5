"""A coherent 3D stack from the synth engine: one seed (one patient, contrast and scanner) rendered at
several levels from base to apex, put on an oblique slice grid. For evaluation families, not training.

    image, canonical = synth_stack(seed=4, n_slices=6, ranges=SynthRanges(spacing_mm=0.9))

Every draw of synth_slice is made whatever the level, so the slices share anatomy parameters, pose,
contrast and effects; only the level (LV radius, basal structures) changes from slice to slice.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import SimpleITK as sitk

from .sample import SynthRanges, synth_slice


def synth_stack(seed: int, n_slices: int, ranges: "SynthRanges | None" = None, slice_spacing_mm: float = 10.0,
                first_level: float = 0.05, last_level: float = 0.9) -> tuple[sitk.Image, sitk.Image]:
    """(int16 image, uint8 canonical labels) volumes on the same oblique grid (x, y in-plane, z across slices)."""
    r = ranges or SynthRanges()
    levels = np.linspace(first_level, last_level, n_slices)
    slices = [synth_slice(seed, dataclasses.replace(r, levels=(float(lv), float(lv)))) for lv in levels]
    images = np.stack([s.image for s in slices])
    canonical = np.stack([s.canonical for s in slices])
    rng = np.random.default_rng([seed, 7])
    q = rng.normal(size=4)
    direction = _rotation(q / np.linalg.norm(q))
    origin = rng.uniform(-200, 200, 3)
    out = []
    for array in (np.clip(np.rint(images), -32768, 32767).astype(np.int16), canonical.astype(np.uint8)):
        img = sitk.GetImageFromArray(array)
        img.SetSpacing((r.spacing_mm, r.spacing_mm, slice_spacing_mm))
        img.SetDirection(tuple(direction.ravel()))
        img.SetOrigin(tuple(origin))
        out.append(img)
    return out[0], out[1]


def _rotation(q: np.ndarray) -> np.ndarray:
    a, b, c, d = q
    return np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                     [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                     [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d]])
