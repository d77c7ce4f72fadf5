"""Where a volume becomes a batch of 2D short-axis slices, and where model output goes back.

The method works slice by slice (paper §2.1: each slice scaled to [0, 255]; §3.1: slices centred and
padded to a fixed size). `volume_to_slices` does the forward steps and records everything needed to
undo them; `slices_to_volume` / `mask_to_volume` are the exact inverses:

    volume (any orientation, any size, anisotropic)          SimpleITK image, z/y/x array order
      1. slice axis first: the image axis with the largest spacing (ties: the last image axis, k)
      2. optional in-plane resampling to `spacing_mm` (segmentation wants hearts of the same size in pixels)
      3. per-slice min-max scaling to [0, 255]
      4. optional centre pad/crop to `size`, or padding up to a `multiple_of` (U-Net strides)
    stack.slices (N, H, W) float32 in [0, 255]

With `spacing_mm=None` no pixel is interpolated, so forward-then-inverse is the identity (bit for bit
for integer volumes, which come back in their own pixel type).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .errors import InputError


@dataclass
class SliceStack:
    """A volume as (N, H, W) slices in [0, 255], plus what is needed to put results back."""

    slices: np.ndarray  # (N, H, W) float32 in [0, 255]
    lo: np.ndarray  # (N,) float64: intensity that maps to 0 in each slice
    hi: np.ndarray  # (N,) float64: intensity that maps to 255
    spacing: tuple[float, float]  # (row, col) mm of `slices` pixels
    reference: sitk.Image  # the input volume: geometry and pixel type of every inverse
    axes: tuple[int, int, int]  # numpy axes of the input array that became (slice, row, col)
    native_shape: tuple[int, int]  # in-plane shape before resampling
    resampled_shape: tuple[int, int]  # in-plane shape after resampling, before pad/crop
    pad: tuple[tuple[int, int], tuple[int, int]]  # (before, after) per in-plane axis; negative = cropped
    cropped_away: "np.ndarray | None" = None  # scaled resampled slices, kept when `size` cropped them

    @property
    def num_slices(self) -> int:
        return self.slices.shape[0]


def slice_axes(image: sitk.Image) -> tuple[int, int, int]:
    """Numpy axes (of GetArrayFromImage's z, y, x order) as (slice, row, col)."""
    spacing = np.array(image.GetSpacing()[::-1])  # numpy axis order
    slice_axis = 0
    for axis in (1, 2):  # a strictly larger spacing wins; ties keep the image's own k axis
        if spacing[axis] > spacing[slice_axis] * (1 + 1e-6):
            slice_axis = axis
    rest = [a for a in range(3) if a != slice_axis]
    return (slice_axis, rest[0], rest[1])


def volume_to_slices(
    image: sitk.Image,
    spacing_mm: "float | None" = None,
    size: "tuple[int, int] | None" = None,
    multiple_of: int = 1,
) -> SliceStack:
    """Forward transform: a 3D scalar volume → SliceStack (see module docstring)."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"expected a 3D scalar volume, got {image.GetDimension()}D with "
                         f"{image.GetNumberOfComponentsPerPixel()} components per pixel")
    if size is not None and multiple_of != 1:
        raise InputError("give either size or multiple_of, not both")
    array = sitk.GetArrayFromImage(image)
    if not np.all(np.isfinite(array)):
        raise InputError("the volume contains NaN or infinite values")
    axes = slice_axes(image)
    stacked = np.transpose(array, axes).astype(np.float64)
    numpy_spacing = image.GetSpacing()[::-1]
    native_spacing = (numpy_spacing[axes[1]], numpy_spacing[axes[2]])

    lo = stacked.min(axis=(1, 2))
    hi = stacked.max(axis=(1, 2))
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = (stacked - lo[:, None, None]) * (255.0 / span[:, None, None])

    native_shape = scaled.shape[1:]
    if spacing_mm is None:
        spacing = native_spacing
    else:
        target = _resampled_shape(native_shape, native_spacing, spacing_mm)
        scaled = _resample(scaled, target, order=1)
        spacing = (spacing_mm, spacing_mm)
    resampled_shape = scaled.shape[1:]

    pad = _pad_amounts(resampled_shape, size, multiple_of)
    out = _pad_or_crop(scaled, pad)
    return SliceStack(
        slices=out.astype(np.float32),
        lo=lo,
        hi=hi,
        spacing=(float(spacing[0]), float(spacing[1])),
        reference=image,
        axes=axes,
        native_shape=tuple(native_shape),
        resampled_shape=tuple(resampled_shape),
        pad=pad,
        cropped_away=scaled if any(v < 0 for p in pad for v in p) else None,
    )


def labels_to_slices(labels: sitk.Image, stack: SliceStack) -> np.ndarray:
    """A label volume on the same grid as the stack's input → (N, H, W) uint8 in the stack's layout."""
    _check_same_grid(labels, stack.reference)
    array = np.transpose(sitk.GetArrayFromImage(labels), stack.axes)
    if stack.resampled_shape != stack.native_shape:
        array = _resample(array, stack.resampled_shape, order=0)
    return _pad_or_crop(array, stack.pad).astype(np.uint8)


def slices_to_volume(stack: SliceStack, slices: np.ndarray, dtype: "np.dtype | type | None" = None) -> sitk.Image:
    """Inverse transform of intensities: (N, H, W) in the [0, 255] scale → volume in the input's geometry.

    dtype None gives the input's pixel type (integers rounded and clipped to the type's range);
    pass np.float32 for a float volume (e.g. an uncertainty map).
    """
    values = _unpad(np.asarray(slices, dtype=np.float64), stack, fill=stack.cropped_away)
    if stack.resampled_shape != stack.native_shape:
        values = _resample(values, stack.native_shape, order=1)
    span = np.where(stack.hi > stack.lo, stack.hi - stack.lo, 0.0)
    values = values * (span[:, None, None] / 255.0) + stack.lo[:, None, None]
    out_dtype = np.dtype(dtype) if dtype is not None else sitk.GetArrayViewFromImage(stack.reference).dtype
    if np.issubdtype(out_dtype, np.integer):
        info = np.iinfo(out_dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return _to_image(values.astype(out_dtype), stack)


def scale_to_volume(stack: SliceStack, slices: np.ndarray) -> sitk.Image:
    """Like slices_to_volume for a spread (e.g. a standard deviation): scaled, not shifted; float32."""
    values = _unpad(np.asarray(slices, dtype=np.float64), stack, fill=None)
    if stack.resampled_shape != stack.native_shape:
        values = _resample(values, stack.native_shape, order=1)
    span = np.where(stack.hi > stack.lo, stack.hi - stack.lo, 0.0)
    return _to_image((values * (span[:, None, None] / 255.0)).astype(np.float32), stack)


def mask_to_volume(stack: SliceStack, mask: np.ndarray) -> sitk.Image:
    """Inverse transform of a mask or probability map (N, H, W) → uint8 0/1 volume in the input's geometry."""
    values = _unpad(np.asarray(mask, dtype=np.float32), stack, fill=None)
    if stack.resampled_shape != stack.native_shape:
        values = _resample(values, stack.native_shape, order=1)
    return _to_image((values > 0.5).astype(np.uint8), stack)


def maps_to_labels(stack: SliceStack, maps: np.ndarray) -> sitk.Image:
    """Per-class probability maps (C, N, H, W) → uint8 label volume (argmax) in the input's geometry.

    Each map is resampled onto the input grid first (linear) and the most probable class wins there, so
    the classes' borders fall between the model's pixels as the probabilities say."""
    values = []
    for m in np.asarray(maps, dtype=np.float32):
        v = _unpad(m, stack, fill=None)
        if stack.resampled_shape != stack.native_shape:
            v = _resample(v, stack.native_shape, order=1)
        values.append(v)
    return _to_image(np.argmax(np.stack(values), axis=0).astype(np.uint8), stack)


# ---- helpers ---------------------------------------------------------------------------------------


def _resampled_shape(shape, spacing, spacing_mm) -> tuple[int, int]:
    """Keep the field of view: n pixels of s mm become round(n·s / spacing_mm) pixels."""
    return tuple(max(1, int(round(n * s / spacing_mm))) for n, s in zip(shape, spacing))


def _resample(stacked: np.ndarray, shape, order: int) -> np.ndarray:
    """In-plane resampling of (N, H, W) to (N, *shape), pixel extents aligned (grid mode)."""
    factors = (1.0, shape[0] / stacked.shape[1], shape[1] / stacked.shape[2])
    out = ndimage.zoom(stacked, factors, order=order, mode="nearest", grid_mode=True, prefilter=False)
    assert out.shape[1:] == tuple(shape), (out.shape, shape)
    return out


def _pad_amounts(shape, size, multiple_of) -> tuple[tuple[int, int], tuple[int, int]]:
    if size is not None:
        targets = size
    else:
        targets = [int(np.ceil(n / multiple_of)) * multiple_of for n in shape]
    pads = []
    for n, t in zip(shape, targets):
        total = t - n  # negative: crop
        before = total // 2 if total >= 0 else -((-total) // 2)
        pads.append((before, total - before))
    return (pads[0], pads[1])


def _pad_or_crop(stacked: np.ndarray, pad) -> np.ndarray:
    out = stacked
    for axis, (before, after) in zip((1, 2), pad):
        n = out.shape[axis]
        lo_crop, hi_crop = max(0, -before), max(0, -after)
        out = np.take(out, np.arange(lo_crop, n - hi_crop), axis=axis)
        widths = [(0, 0)] * 3
        widths[axis] = (max(0, before), max(0, after))
        out = np.pad(out, widths)
    return out


def _unpad(slices: np.ndarray, stack: SliceStack, fill: "np.ndarray | None") -> np.ndarray:
    """Undo _pad_or_crop; regions that the forward step cropped away come from `fill` (or are 0)."""
    n = stack.num_slices
    if slices.shape != stack.slices.shape:
        raise InputError(f"slices have shape {slices.shape}, the stack has {stack.slices.shape}")
    (tb, ta), (lb, la) = stack.pad
    h, w = stack.resampled_shape
    out = np.array(fill, dtype=slices.dtype) if fill is not None else np.zeros((n, h, w), slices.dtype)
    # rows/cols of the resampled grid that survived, and where they sit in `slices`
    r0, r1 = max(0, -tb), h - max(0, -ta)
    c0, c1 = max(0, -lb), w - max(0, -la)
    sr0, sc0 = max(0, tb), max(0, lb)
    out[:, r0:r1, c0:c1] = slices[:, sr0:sr0 + (r1 - r0), sc0:sc0 + (c1 - c0)]
    return out


def _to_image(stacked: np.ndarray, stack: SliceStack) -> sitk.Image:
    array = np.transpose(stacked, np.argsort(stack.axes))
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.CopyInformation(stack.reference)
    return image


def _check_same_grid(image: sitk.Image, reference: sitk.Image, tol: float = 1e-4) -> None:
    if image.GetSize() != reference.GetSize():
        raise InputError(f"label volume size {image.GetSize()} differs from the image's {reference.GetSize()}")
    for name in ("GetSpacing", "GetOrigin", "GetDirection"):
        a, b = np.array(getattr(image, name)()), np.array(getattr(reference, name)())
        if not np.allclose(a, b, atol=tol, rtol=tol):
            raise InputError(f"label volume {name[3:].lower()} {tuple(a)} differs from the image's {tuple(b)}")


def to_stack_scale(stack: SliceStack, image: sitk.Image, shift: bool = True) -> np.ndarray:
    """A volume on `stack`'s grid (native pixels), in the input's units → (N, H, W) float64 on the stack's
    per-slice [0, 255] scale, as volume_to_slices scaled the original. shift=False for a spread (SD)."""
    array = np.transpose(sitk.GetArrayFromImage(image), stack.axes).astype(np.float64)
    span = np.where(stack.hi > stack.lo, stack.hi - stack.lo, 1.0)  # as volume_to_slices
    if shift:
        array = array - stack.lo[:, None, None]
    return array * (255.0 / span[:, None, None])
