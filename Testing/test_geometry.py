"""Volume ↔ slices: the forward transform and its inverse, on random volumes of any shape and orientation."""

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings, strategies as st

from scarenhance.errors import InputError
from scarenhance.geometry import (
    labels_to_slices,
    mask_to_volume,
    scale_to_volume,
    slices_to_volume,
    volume_to_slices,
)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))  # a proper orthonormal basis, possibly a reflection: both occur in DICOM


def make_volume(shape_zyx, spacing_xyz, seed, dtype=np.int16) -> sitk.Image:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        array = rng.integers(-200, 3000, size=shape_zyx).astype(dtype)
    else:
        array = rng.normal(100, 50, size=shape_zyx).astype(dtype)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing_xyz)
    image.SetOrigin(tuple(rng.normal(0, 100, 3)))
    image.SetDirection(tuple(random_rotation(rng).ravel()))
    return image


def same_geometry(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing())
            and np.allclose(a.GetOrigin(), b.GetOrigin()) and np.allclose(a.GetDirection(), b.GetDirection()))


shapes = st.tuples(st.integers(1, 7), st.integers(9, 61), st.integers(9, 61))
spacings = st.tuples(st.floats(0.6, 2.2), st.floats(0.6, 2.2), st.floats(5.0, 12.0))
targets = st.one_of(st.none(), st.tuples(st.integers(8, 80), st.integers(8, 80)))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, spacing=spacings, size=targets, multiple=st.sampled_from([1, 8, 16]), seed=st.integers(0, 10**6))
def test_forward_then_inverse_is_identity(shape, spacing, size, multiple, seed):
    image = make_volume(shape, spacing, seed)
    stack = volume_to_slices(image, size=size, multiple_of=1 if size else multiple)
    assert stack.slices.dtype == np.float32
    assert stack.slices.min() >= 0 and stack.slices.max() <= 255
    if size:
        assert stack.slices.shape[1:] == size
    else:
        assert all(n % multiple == 0 for n in stack.slices.shape[1:])
    back = slices_to_volume(stack, stack.slices)
    assert same_geometry(back, image)
    assert back.GetPixelID() == image.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


@settings(max_examples=15, deadline=None)
@given(shape=shapes, spacing=spacings, seed=st.integers(0, 10**6))
def test_float_volume_round_trip(shape, spacing, seed):
    image = make_volume(shape, spacing, seed, dtype=np.float32)
    back = slices_to_volume(volume_to_slices(image, multiple_of=16), volume_to_slices(image, multiple_of=16).slices)
    assert back.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image), rtol=1e-5, atol=1e-3)


def test_slice_axis_is_the_largest_spacing_whatever_the_array_order():
    # the same stack stored with the slice direction along i (x) instead of k (z)
    array = np.zeros((40, 30, 6), np.int16)  # z, y, x: 6 slices along x
    for s in range(6):
        array[:, :, s] = s * 100 + 7
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((8.0, 1.1, 1.3))
    stack = volume_to_slices(image)
    assert stack.slices.shape == (6, 40, 30)
    assert stack.spacing == (1.3, 1.1)
    np.testing.assert_array_equal(stack.lo, [s * 100 + 7 for s in range(6)])


def test_constant_slice_maps_to_zero_and_back():
    array = np.full((3, 20, 20), 42, np.int16)
    array[1] = np.arange(400).reshape(20, 20)
    image = sitk.GetImageFromArray(array)
    stack = volume_to_slices(image)
    assert np.all(stack.slices[0] == 0)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(slices_to_volume(stack, stack.slices)), array)


def test_resampling_sets_spacing_keeps_field_of_view_and_inverts_smooth_images():
    yy, xx = np.mgrid[0:96, 0:80]
    smooth = (1000 + 400 * np.sin(yy / 9.0) * np.cos(xx / 7.0)).astype(np.float32)
    image = sitk.GetImageFromArray(np.stack([smooth] * 3))
    image.SetSpacing((0.75, 0.75, 10.0))
    stack = volume_to_slices(image, spacing_mm=1.5, multiple_of=16)
    assert stack.spacing == (1.5, 1.5)
    assert stack.resampled_shape == (48, 40)  # same field of view in mm
    assert stack.slices.shape == (3, 48, 48)
    back = sitk.GetArrayFromImage(slices_to_volume(stack, stack.slices))
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert np.abs(back[inner] - np.stack([smooth] * 3)[inner]).max() < 40  # interpolation error only


def test_labels_follow_the_image_layout_and_masks_come_back_on_the_input_grid():
    image = make_volume((4, 33, 47), (0.9, 1.7, 8.0), seed=3)
    labels_array = np.zeros((4, 33, 47), np.uint8)
    labels_array[:, 10:20, 15:30] = 2
    labels = sitk.GetImageFromArray(labels_array)
    labels.CopyInformation(image)
    for kwargs in ({}, {"size": (24, 24)}, {"multiple_of": 16}, {"spacing_mm": 1.2, "multiple_of": 16}):
        stack = volume_to_slices(image, **kwargs)
        sliced = labels_to_slices(labels, stack)
        assert sliced.shape == stack.slices.shape and sliced.dtype == np.uint8
        mask = mask_to_volume(stack, (sliced == 2).astype(np.float32))
        assert same_geometry(mask, image) and mask.GetPixelID() == sitk.sitkUInt8
        got = sitk.GetArrayFromImage(mask).astype(bool)
        want = labels_array == 2
        if "spacing_mm" in kwargs:
            assert (got & want).sum() / want.sum() > 0.85
        elif "size" in kwargs:  # what the crop removed cannot come back
            assert not (got & ~want).any()
        else:
            np.testing.assert_array_equal(got, want)


def test_spread_is_scaled_not_shifted():
    image = make_volume((2, 20, 20), (1.0, 1.0, 8.0), seed=5)
    stack = volume_to_slices(image)
    ones = scale_to_volume(stack, np.full(stack.slices.shape, 255.0))
    np.testing.assert_allclose(sitk.GetArrayFromImage(ones)[:, 0, 0], stack.hi - stack.lo, rtol=1e-5)


def test_bad_inputs_are_clear_errors():
    image = make_volume((2, 20, 20), (1.0, 1.0, 8.0), seed=1, dtype=np.float32)
    nan = sitk.GetArrayFromImage(image)
    nan[0, 3, 3] = np.nan
    bad = sitk.GetImageFromArray(nan)
    with pytest.raises(InputError, match="NaN"):
        volume_to_slices(bad)
    with pytest.raises(InputError, match="3D"):
        volume_to_slices(sitk.Image(10, 10, sitk.sitkFloat32))
    stack = volume_to_slices(image)
    other = sitk.Image(21, 20, 2, sitk.sitkUInt8)
    with pytest.raises(InputError, match="size"):
        labels_to_slices(other, stack)
    shifted = sitk.Image(20, 20, 2, sitk.sitkUInt8)
    shifted.CopyInformation(image)
    shifted.SetOrigin((5.0, 0.0, 0.0))
    with pytest.raises(InputError, match="origin"):
        labels_to_slices(shifted, stack)
    with pytest.raises(InputError, match="shape"):
        slices_to_volume(stack, stack.slices[:, :5])
