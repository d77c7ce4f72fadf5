"""scarenhance.io: formats, the 2D/4D policy, DICOM series, atomic writes, and errors that name the file."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from scarenhance.errors import InputError
from scarenhance.io import read_image, write_image


def _volume(shape=(4, 12, 10), seed=0, dtype=np.int16) -> sitk.Image:
    """A random oblique, anisotropic volume (numpy shape z, y, x)."""
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.integers(-300, 3000, shape).astype(dtype))
    image.SetSpacing((0.75, 0.8, 8.0))
    image.SetOrigin((-120.5, 33.25, 7.0))
    c, s = np.cos(0.4), np.sin(0.4)
    image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    return image


def _assert_same(a: sitk.Image, b: sitk.Image):
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_voxels_geometry_and_pixel_type(tmp_path, ext):
    image = _volume()
    path = write_image(image, tmp_path / f"case{ext}")
    back = read_image(path)
    _assert_same(image, back)
    assert back.GetPixelID() == sitk.sitkInt16


def test_reads_detached_header_metaimage(tmp_path):
    image = _volume()
    sitk.WriteImage(image, str(tmp_path / "case.mhd"))
    _assert_same(image, read_image(tmp_path / "case.mhd"))


def test_write_refuses_to_overwrite_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.nii.gz"
    write_image(_volume(seed=1), path)
    before = path.read_bytes()
    with pytest.raises(InputError, match="already exists") as e:
        write_image(_volume(seed=2), path)
    assert "out.nii.gz" in str(e.value)
    assert path.read_bytes() == before
    write_image(_volume(seed=2), path, overwrite=True)
    _assert_same(_volume(seed=2), read_image(path))


def test_write_creates_parents_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "a" / "b" / "vol.nrrd"
    write_image(_volume(), path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["vol.nrrd"]


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        Path(args[1]).write_bytes(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", broken)
    with pytest.raises(InputError, match="disk full") as e:
        write_image(_volume(), tmp_path / "vol.nii.gz")
    assert "vol.nii.gz" in str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["vol.mhd", "vol.png", "vol"])
def test_write_refuses_formats_it_cannot_write_atomically(tmp_path, name):
    with pytest.raises(InputError, match="cannot write this format") as e:
        write_image(_volume(), tmp_path / name)
    assert name in str(e.value)


def test_2d_image_is_promoted_to_one_slice_volume(tmp_path):
    plane = sitk.GetImageFromArray(np.arange(30, dtype=np.int16).reshape(5, 6))
    plane.SetSpacing((0.7, 0.9))
    plane.SetOrigin((3.0, -4.0))
    sitk.WriteImage(plane, str(tmp_path / "slice.nrrd"))
    volume = read_image(tmp_path / "slice.nrrd")
    assert volume.GetDimension() == 3 and volume.GetSize() == (6, 5, 1)
    assert volume.GetSpacing()[:2] == pytest.approx((0.7, 0.9))
    assert volume.GetOrigin()[:2] == pytest.approx((3.0, -4.0))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume)[0], sitk.GetArrayFromImage(plane))


def test_4d_image_is_refused_naming_the_file(tmp_path):
    sitk.WriteImage(sitk.Image([6, 5, 4, 3], sitk.sitkInt16), str(tmp_path / "cine.nii.gz"))
    with pytest.raises(InputError, match="4D image") as e:
        read_image(tmp_path / "cine.nii.gz")
    assert "cine.nii.gz" in str(e.value) and "3D short-axis stack" in str(e.value)


def test_4d_image_with_one_time_point_is_read_as_3d(tmp_path):
    sitk.WriteImage(sitk.Image([6, 5, 4, 1], sitk.sitkInt16), str(tmp_path / "one.mha"))
    assert read_image(tmp_path / "one.mha").GetSize() == (6, 5, 4)


def test_vector_image_is_refused(tmp_path):
    rgb = sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.nrrd"))
    with pytest.raises(InputError, match="3 components") as e:
        read_image(tmp_path / "rgb.nrrd")
    assert "rgb.nrrd" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found") as e:
        read_image(tmp_path / "nope.nii.gz")
    assert "nope.nii.gz" in str(e.value)


def test_garbage_and_unknown_formats(tmp_path):
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image at all" * 20)
    with pytest.raises(InputError, match="cannot read") as e:
        read_image(tmp_path / "junk.nii.gz")
    assert "junk.nii.gz" in str(e.value)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unknown image format") as e:
        read_image(tmp_path / "notes.txt")
    assert "notes.txt" in str(e.value)


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_truncated_file_is_refused(tmp_path, ext):
    # ITK's NIfTI reader silently returns garbage for truncated files; we check the byte count ourselves.
    full = tmp_path / f"full{ext}"
    write_image(_volume(shape=(6, 40, 50)), full)
    data = full.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as e:
        read_image(cut)
    assert f"cut{ext}" in str(e.value)


def _write_dicom_series(folder: Path, image: sitk.Image, series_uid: str):
    """Write ``image`` as a DICOM series with SimpleITK (one file per slice, geometry in the tags)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    direction = image.GetDirection()
    orientation = "\\".join(f"{v:.6f}" for v in (direction[0], direction[3], direction[6], direction[1], direction[4], direction[7]))
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        tags = {
            "0008|0060": "MR",
            "0020|000d": series_uid.rsplit(".", 1)[0],
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0037": orientation,
            "0020|0032": "\\".join(f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            "0018|0050": f"{image.GetSpacing()[2]:.6f}",
            "0008|0018": f"{series_uid}.{k + 1}",
        }
        for tag, value in tags.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"IM{series_uid[-3:].replace('.', '')}{k:04d}.dcm"))
        writer.Execute(plane)


def test_dicom_series_round_trip(tmp_path):
    image = _volume(shape=(5, 12, 10))
    _write_dicom_series(tmp_path / "lge", image, "1.2.826.0.1.3680043.2.1125.1.1")
    back = read_image(tmp_path / "lge")
    _assert_same(image, back)
    # One file of the series reads the whole series.
    _assert_same(image, read_image(sorted((tmp_path / "lge").iterdir())[2]))


def test_folder_with_two_dicom_series_lists_their_uids(tmp_path):
    _write_dicom_series(tmp_path / "study", _volume(seed=1), "1.2.826.0.1.3680043.2.1125.1.1")
    _write_dicom_series(tmp_path / "study", _volume(seed=2), "1.2.826.0.1.3680043.2.1125.2.2")
    with pytest.raises(InputError, match="2 DICOM series") as e:
        read_image(tmp_path / "study")
    message = str(e.value)
    assert "study" in message
    assert "1.2.826.0.1.3680043.2.1125.1.1" in message and "1.2.826.0.1.3680043.2.1125.2.2" in message


def test_folder_without_dicom(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM series") as e:
        read_image(tmp_path / "empty")
    assert "empty" in str(e.value)


def test_multi_member_gzip_nifti_is_read(tmp_path):
    """Concatenated gzip members are valid .nii.gz; the trailer-size shortcut must not reject them."""
    import gzip

    image = _volume(shape=(6, 40, 50))
    write_image(image, tmp_path / "plain.nii")
    raw = (tmp_path / "plain.nii").read_bytes()
    half = len(raw) // 2
    (tmp_path / "multi.nii.gz").write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]))
    _assert_same(image, read_image(tmp_path / "multi.nii.gz"))


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("dtype, bad", [(np.float32, np.nan), (np.float64, np.inf), (np.float32, -np.inf)])
def test_nan_and_inf_are_refused_in_every_format(tmp_path, ext, dtype, bad):
    """ITK's NIfTI reader turns NaN/Inf into 0, so the raw payload is what is checked there."""
    array = np.ones((3, 16, 16), dtype)
    array[1, 2, 3] = bad
    array[2, 5, 5] = bad
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / f"nan{ext}"))
    with pytest.raises(InputError, match="2 NaN or infinite voxels") as e:
        read_image(tmp_path / f"nan{ext}")
    assert e.value.path == tmp_path / f"nan{ext}"
    array[np.isnan(array) | np.isinf(array)] = 7  # the same file without them reads
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / f"ok{ext}"))
    assert sitk.GetArrayFromImage(read_image(tmp_path / f"ok{ext}"))[1, 2, 3] == 7


def test_big_endian_nifti_payload_is_scanned(tmp_path):
    """A NIfTI-1 file written by hand in big-endian order (some scanners' converters do this)."""
    import struct

    data = np.ones((2, 4, 4), ">f4")
    data[0, 0, 0] = np.nan
    header = bytearray(352)
    struct.pack_into(">i", header, 0, 348)
    struct.pack_into(">8h", header, 40, 3, 4, 4, 2, 1, 1, 1, 1)
    struct.pack_into(">2h", header, 70, 16, 32)
    struct.pack_into(">8f", header, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into(">f", header, 108, 352.0)
    struct.pack_into(">f", header, 112, 1.0)
    header[344:348] = b"n+1\0"
    (tmp_path / "be.nii").write_bytes(bytes(header) + data.tobytes())
    with pytest.raises(InputError, match="1 NaN or infinite"):
        read_image(tmp_path / "be.nii")


def test_complex_image_is_refused(tmp_path):
    sitk.WriteImage(sitk.Image(8, 8, 2, sitk.sitkComplexFloat32), str(tmp_path / "kspace.nii.gz"))
    with pytest.raises(InputError, match="complex-valued") as e:
        read_image(tmp_path / "kspace.nii.gz")
    assert e.value.path.name == "kspace.nii.gz"


def test_an_image_too_large_to_process_is_refused_from_its_header(tmp_path, monkeypatch):
    import scarenhance.io as io

    sitk.WriteImage(sitk.Image(40, 30, 2, sitk.sitkInt16), str(tmp_path / "big.nrrd"))
    monkeypatch.setattr(io, "MAX_SIDE", 32)
    monkeypatch.setattr(sitk.ImageFileReader, "Execute", lambda self: pytest.fail("pixels were read"))
    with pytest.raises(InputError, match="40x30x2 voxels is larger than ScarEnhance reads") as e:
        read_image(tmp_path / "big.nrrd")
    assert e.value.path.name == "big.nrrd"


def test_write_never_goes_through_or_over_a_symbolic_link(tmp_path):
    victim = tmp_path / "victim.nii.gz"
    write_image(_volume(seed=1), victim)
    before = victim.read_bytes()
    (tmp_path / "link.nii.gz").symlink_to(victim)
    (tmp_path / "dangling.nii.gz").symlink_to(tmp_path / "nowhere.nii.gz")
    for name in ("link.nii.gz", "dangling.nii.gz"):
        for overwrite in (False, True):
            with pytest.raises(InputError, match="symbolic link") as e:
                write_image(_volume(seed=2), tmp_path / name, overwrite=overwrite)
            assert e.value.path.name == name
    assert victim.read_bytes() == before and not (tmp_path / "nowhere.nii.gz").exists()


def test_check_output_refuses_a_parent_that_is_a_file_or_read_only_and_creates_nothing(tmp_path):
    import os

    from scarenhance.io import check_output

    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output(tmp_path / "notes.txt" / "sub" / "out.nii.gz")
    assert check_output(tmp_path / "new" / "out.nii.gz") == tmp_path / "new" / "out.nii.gz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing created, no probe left
    if os.geteuid() != 0:  # root writes anywhere: permissions cannot refuse it
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            with pytest.raises(InputError, match="cannot write in the folder"):
                check_output(locked / "out.nii.gz")
        finally:
            locked.chmod(0o700)
