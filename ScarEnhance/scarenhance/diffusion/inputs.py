"""Checks of what enhance_scar is given: parameters, the image, and the ROI's grid.

Stated behaviours (each tested):
- λ outside 1 … T, k < 1, steps outside 1 … λ, a negative seed, an agreement that is not a finite
  number from 0 to MAX_AGREEMENT: InputError.
- NaN or infinite voxels in the image: InputError with their count (nothing is guessed).
- An ROI on another grid than the image: resampled onto the image's grid with nearest neighbour;
  if nothing of it lands on the image: InputError. An empty ROI: InputError.
- ROI values: every non-zero voxel is inside (label maps work as ROIs).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

GRID_TOL = 1e-4  # relative tolerance of spacing/origin/direction, as float32 NIfTI headers need
MAX_AGREEMENT = 10.0  # standard errors (agreement.py); a bound that catches a mistyped value


def check_parameters(lam: int, k: int, steps: "int | None", seed: "int | None", num_train_timesteps: int,
                     agreement: float = 0.0) -> None:
    if not isinstance(lam, (int, np.integer)) or not 1 <= lam <= num_train_timesteps:
        raise InputError(f"lambda (the partial-diffusion step) must be an integer from 1 to {num_train_timesteps}, got {lam!r}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k (the number of samples averaged) must be an integer of at least 1, got {k!r}")
    if steps is not None and (not isinstance(steps, (int, np.integer)) or not 1 <= steps <= lam):
        raise InputError(f"steps (fast mode) must be an integer from 1 to lambda = {lam}, got {steps!r}")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(agreement, bool) or not isinstance(agreement, (int, float, np.integer, np.floating)) \
            or not 0 <= agreement <= MAX_AGREEMENT:
        raise InputError(f"agreement must be a number of standard errors from 0 to {MAX_AGREEMENT:g}, got {agreement!r}")


def check_image(image: sitk.Image) -> np.ndarray:
    """The image's voxels (z, y, x); InputError for a non-3D, multi-component or non-finite image."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"the image must be a 3D scalar volume, got {image.GetDimension()}D with "
                         f"{image.GetNumberOfComponentsPerPixel()} components per voxel")
    array = sitk.GetArrayFromImage(image)
    bad = int(np.count_nonzero(~np.isfinite(array))) if np.issubdtype(array.dtype, np.floating) else 0
    if bad:
        raise InputError(f"the image has {bad} NaN or infinite voxels; fix or mask them before enhancing")
    return array


def same_grid(a: sitk.Image, b: sitk.Image, tol: float = GRID_TOL) -> bool:
    if a.GetSize() != b.GetSize():
        return False
    scale = max(1.0, float(np.max(np.abs(b.GetSpacing()))))
    return (np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=tol, atol=0)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=tol, atol=tol * scale)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol))


def roi_on_image_grid(roi: sitk.Image, image: sitk.Image) -> np.ndarray:
    """Boolean ROI (z, y, x) on the image's voxel grid (see the module docstring for the rules)."""
    if roi.GetDimension() != 3:
        raise InputError(f"the ROI must be a 3D mask, got {roi.GetDimension()}D")
    if roi.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("the ROI must be a scalar mask, not a multi-component image")
    if not np.any(sitk.GetArrayViewFromImage(roi)):
        raise InputError("the ROI is empty: it has no voxel inside (segment the heart first, or check the mask)")
    if same_grid(roi, image):
        return sitk.GetArrayFromImage(roi) != 0
    binary = sitk.Cast(roi != 0, sitk.sitkUInt8)
    resampled = sitk.Resample(binary, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    inside = sitk.GetArrayFromImage(resampled) != 0
    if not inside.any():
        raise InputError("the ROI does not overlap the image: it lies on another grid and none of its voxels "
                         "falls inside the image (was it drawn on another volume?)")
    return inside
