"""Read and write single 3D volumes through SimpleITK.

``read_image`` accepts a NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) or MetaImage (.mha, .mhd) file, a
folder holding one DICOM series, or one file of a DICOM series (the whole series is read). It always
returns a scalar 3D ``sitk.Image`` in the file's own pixel type and geometry:

- a 2D image (one slice) is promoted to a single-slice 3D volume, so a lone short-axis slice can be
  enhanced like a stack; the third axis gets spacing 1 mm and the identity direction extension;
- a 4D image with a single time point is squeezed to 3D (some tools write NIfTI with dim[4] = 1);
- a real 4D image (cine, multi-TI), a vector / RGB or a complex-valued image is refused: the method
  works on one 3D short-axis LGE stack;
- an image longer than `MAX_SIDE` voxels along an axis, or of more than `MAX_VOXELS` voxels, is refused
  from its header, before its pixels are read (LGE slices are at most ~512²; a 4096² slice would
  cost gigabytes in float64 work arrays);
- NaN or infinite voxels are an error whatever the format. ITK's NIfTI reader turns them into 0
  without a word, so for NIfTI the raw float payload is scanned as well.

``write_image`` writes atomically (a temporary file beside the target, then ``os.replace``), so an
interrupted write never leaves half a file under the final name, and it never overwrites unless asked;
it never writes through or over a symbolic link. ``check_output`` runs the same checks (and probes that
the folder can be written) without writing, so commands refuse a bad output path before the work.
Every problem is an ``InputError`` naming the file.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .bundle import default_permissions
from .errors import InputError

# Extensions we read as single files, longest first so ".nii.gz" wins over ".gz".
READ_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
# Detached-header formats (.mhd + .raw, .nhdr + .raw) name their data file inside the header, so a
# temporary name cannot be renamed into place: we write only the single-file formats.
WRITE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha")
DICOM_EXTENSIONS = (".dcm", ".ima", ".dicom")
_SERIES_UID_TAG = "0020|000e"
MAX_SIDE = 2048  # voxels along any axis
MAX_VOXELS = 1 << 26  # 67 M voxels, e.g. 512 x 512 x 256
_NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype code → numpy item type


def image_extension(path: "str | Path") -> str:
    """The image extension of ``path`` ('.nii.gz', '.nrrd', ...), lower case; '' when none is known."""
    name = Path(path).name.lower()
    for ext in READ_EXTENSIONS + DICOM_EXTENSIONS:
        if name.endswith(ext):
            return ext
    return ""


def strip_image_extension(path: "str | Path") -> str:
    """File name without its image extension: 'Case_N012.nii.gz' → 'Case_N012'."""
    name = Path(path).name
    ext = image_extension(name)
    return name[: len(name) - len(ext)] if ext else name


def read_image(path: "str | Path") -> sitk.Image:
    """Read one scalar 3D volume (see the module docstring for formats and the 2D/4D policy).

    Raises InputError naming ``path`` when it is missing, unreadable, corrupt, 4D or vector-valued.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file or folder not found", path)
    if path.is_dir():
        image = _read_dicom_folder(path)
    elif image_extension(path) in DICOM_EXTENSIONS or _looks_like_dicom(path):
        image = _read_dicom_file_series(path)
    else:
        image = _read_file(path)
    _check_size(image.GetSize(), path)
    image = _as_scalar_3d(image, path)
    _check_finite(image, path)
    return image


def check_output(path: "str | Path", overwrite: bool = False, image: bool = True) -> Path:
    """Refuse an output path that write_image would refuse, before any work: an unknown format, a
    folder, a symbolic link, an existing file (unless `overwrite`), a parent that is a file or cannot
    be written. `image=False` for other outputs (a JSON report): every check but the format. Nothing
    is created."""
    path = Path(path)
    ext = image_extension(path)
    if image and ext not in WRITE_EXTENSIONS:
        raise InputError(
            f"cannot write this format (extension {ext or path.suffix or 'none'!r}); "
            f"use one of {', '.join(WRITE_EXTENSIONS)}",
            path,
        )
    if path.is_symlink():
        raise InputError("is a symbolic link; refusing to write through or over it (give the real file name)", path)
    if path.is_dir():
        raise InputError("is a folder, expected an image file name", path)
    if path.exists() and not overwrite:
        raise InputError("already exists; refusing to overwrite it (choose another name or allow overwrite)", path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folders write_image would create
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"cannot write here: {folder} is a file, not a folder", path)
    try:  # a real probe: permissions, read-only file systems and ACLs all answer the same way
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise InputError(f"cannot write in the folder {folder}: {e.strerror or e}", path) from e
    return path


def write_image(image: sitk.Image, path: "str | Path", overwrite: bool = False) -> Path:
    """Write ``image`` to ``path`` atomically and return the path.

    Parent folders are created. An existing file is kept (InputError) unless ``overwrite=True``.
    NRRD and MetaImage are written compressed; '.nii.gz' is compressed by its extension.
    """
    path = check_output(path, overwrite)
    ext = image_extension(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the folder: {e.strerror or e}", path.parent) from e

    # The temporary file keeps the real extension so SimpleITK picks the same writer.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{strip_image_extension(path)}.", suffix=ext)
    os.close(fd)
    try:
        sitk.WriteImage(image, tmp_name, useCompression=ext in (".nrrd", ".mha"))
        default_permissions(tmp_name)  # ITK keeps mkstemp's 0600
        os.replace(tmp_name, path)
    except (RuntimeError, OSError) as e:
        raise InputError(f"cannot write the image: {_reason(e)}", path) from e
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def _read_file(path: Path) -> sitk.Image:
    if not image_extension(path):
        raise InputError(
            f"unknown image format (expected {', '.join(READ_EXTENSIONS)}, a DICOM file or a DICOM series folder)",
            path,
        )
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()  # the header alone: refuse a huge image before reading it
        _check_size(reader.GetSize(), path)
        image = reader.Execute()
    except RuntimeError as e:
        raise InputError(f"cannot read the image (corrupt or not an image?): {_reason(e)}", path) from e
    if image_extension(path) in (".nii", ".nii.gz"):
        _check_nifti_complete(path)
    return image


def _check_nifti_complete(path: Path) -> None:
    """ITK's NIfTI reader fills a truncated file with garbage without a word; check the byte count.

    Reads the header's dim, bitpix and vox_offset (NIfTI-1 or -2, either byte order) and compares
    vox_offset + voxels x bytes with the file's length. For .nii.gz the gzip trailer's size field
    answers at once; only when it disagrees (multi-member or damaged files) is the stream decompressed.
    """
    compressed = image_extension(path) == ".nii.gz"
    try:
        with (gzip.open if compressed else open)(path, "rb") as f:
            header = f.read(540)
    except (EOFError, OSError) as e:
        raise InputError(f"corrupt or truncated NIfTI file: {e}", path) from e
    expected = _nifti_byte_count(header)
    if expected is None:
        return  # not a header we understand; ITK read it, so trust ITK
    if not compressed:
        length = path.stat().st_size
    else:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            if struct.unpack("<I", f.read(4))[0] == expected % (1 << 32):
                return
        length = _gzip_length(path)
    if length < expected:
        raise InputError(f"truncated NIfTI file: {length} bytes where its header promises {expected}", path)


def _nifti_byte_count(header: bytes) -> "int | None":
    """vox_offset + image bytes from a NIfTI-1/-2 header, None when it is not one."""
    layout = _nifti_layout(header)
    return None if layout is None else layout[2] + layout[3] * layout[1] // 8


def _nifti_layout(header: bytes) -> "tuple[str, int, int, int, int] | None":
    """(byte order, bitpix, vox_offset, voxels, datatype) of a NIfTI-1/-2 header, None when it is not one."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack_from(endian + "i", header, 0)[0] == 348:
            dim = struct.unpack_from(endian + "8h", header, 40)
            datatype, bitpix = struct.unpack_from(endian + "2h", header, 70)
            offset = max(int(struct.unpack_from(endian + "f", header, 108)[0]), 352)
            break
        if len(header) >= 540 and struct.unpack_from(endian + "i", header, 0)[0] == 540:
            dim = struct.unpack_from(endian + "8q", header, 16)
            datatype, bitpix = struct.unpack_from(endian + "2h", header, 12)
            offset = max(struct.unpack_from(endian + "q", header, 168)[0], 544)
            break
    else:
        return None
    voxels = 1
    for n in dim[1 : 1 + max(0, min(int(dim[0]), 7))]:
        voxels *= max(int(n), 1)
    return endian, bitpix, offset, voxels, datatype


def _nifti_nonfinite(path: Path) -> int:
    """NaN/Inf voxels in a NIfTI file's raw float payload (ITK reads them as 0), read in chunks."""
    compressed = image_extension(path) == ".nii.gz"
    with (gzip.open if compressed else open)(path, "rb") as f:
        layout = _nifti_layout(f.read(540))
        if layout is None or layout[4] not in _NIFTI_FLOATS:
            return 0
        endian, _, offset, voxels, datatype = layout
        dtype = np.dtype(endian + _NIFTI_FLOATS[datatype])
        f.seek(offset)
        count, left = 0, voxels
        while left > 0:
            chunk = f.read(min(left, 1 << 20) * dtype.itemsize)
            if len(chunk) < dtype.itemsize:
                break
            values = np.frombuffer(chunk[: len(chunk) - len(chunk) % dtype.itemsize], dtype)
            count += int(np.count_nonzero(~np.isfinite(values)))
            left -= len(values)
    return count


def _gzip_length(path: Path) -> int:
    """Decompressed length of a gzip file; InputError when the stream is cut short or damaged."""
    length = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                length += len(chunk)
    except (EOFError, OSError) as e:
        raise InputError(f"corrupt or truncated NIfTI file: {e}", path) from e
    return length


def _read_dicom_folder(folder: Path) -> sitk.Image:
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM warns "No Series were found" on stderr
    try:
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    except RuntimeError as e:
        raise InputError(f"cannot scan the folder for DICOM series: {_reason(e)}", folder) from e
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    if not series_ids:
        raise InputError("folder holds no DICOM series (expected one short-axis LGE series)", folder)
    if len(series_ids) > 1:
        raise InputError(
            f"folder holds {len(series_ids)} DICOM series; put the one LGE series to use in a folder of its own "
            f"or pass one of its files. Series UIDs: {', '.join(series_ids)}",
            folder,
        )
    return _read_series(folder, series_ids[0], folder)


def _read_dicom_file_series(path: Path) -> sitk.Image:
    """Read the whole series a single DICOM file belongs to."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise InputError(f"cannot read the DICOM file: {_reason(e)}", path) from e
    if not reader.HasMetaDataKey(_SERIES_UID_TAG):
        return _read_file_any(path)
    uid = reader.GetMetaData(_SERIES_UID_TAG).strip().rstrip("\x00")
    return _read_series(path.parent, uid, path)


def _read_series(folder: Path, uid: str, shown: Path) -> sitk.Image:
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
    if not files:
        raise InputError(f"no readable files for DICOM series {uid}", shown)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as e:
        raise InputError(f"cannot read DICOM series {uid}: {_reason(e)}", shown) from e


def _read_file_any(path: Path) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise InputError(f"cannot read the image: {_reason(e)}", path) from e


def _looks_like_dicom(path: Path) -> bool:
    """DICOM files often have no extension: check the 'DICM' magic at byte 128."""
    if image_extension(path):
        return False
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _check_size(size: "tuple[int, ...]", path: Path) -> None:
    voxels = int(np.prod([max(int(n), 1) for n in size], dtype=np.int64)) if size else 0
    if max(size, default=0) > MAX_SIDE or voxels > MAX_VOXELS:
        raise InputError(
            f"image of {'x'.join(map(str, size))} voxels is larger than ScarEnhance reads (at most {MAX_SIDE} "
            f"voxels along an axis and {MAX_VOXELS} in all; LGE short-axis slices are about 512 x 512 or less)",
            path,
        )


def _check_finite(image: sitk.Image, path: Path) -> None:
    """NaN/Inf voxels are an error; for NIfTI the raw payload is checked too, since ITK zeroes them."""
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return
    bad = int(np.count_nonzero(~np.isfinite(sitk.GetArrayViewFromImage(image))))
    if not bad and image_extension(path) in (".nii", ".nii.gz"):
        try:
            bad = _nifti_nonfinite(path)
        except (EOFError, OSError) as e:
            raise InputError(f"corrupt or truncated NIfTI file: {e}", path) from e
    if bad:
        raise InputError(f"the image has {bad} NaN or infinite voxels; fix or mask them first "
                         "(ScarEnhance does not guess values)", path)


def _as_scalar_3d(image: sitk.Image, path: Path) -> sitk.Image:
    if image.GetPixelID() in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
        raise InputError("complex-valued image (raw k-space or phase data?): ScarEnhance needs magnitude "
                         "LGE, one real value per voxel", path)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"vector image with {image.GetNumberOfComponentsPerPixel()} components per pixel "
            "(RGB or multi-channel): ScarEnhance needs one scalar 3D short-axis stack",
            path,
        )
    dim = image.GetDimension()
    if dim == 3:
        return image
    if dim == 2:
        # One slice: stack it into a 1-slice volume (JoinSeries keeps spacing/origin/direction in-plane).
        return sitk.JoinSeries([image])
    if dim == 4 and image.GetSize()[3] == 1:
        size = list(image.GetSize())
        size[3] = 0  # Extract with size 0 along an axis collapses that axis
        return sitk.Extract(image, size, [0, 0, 0, 0])
    raise InputError(
        f"{dim}D image of size {'x'.join(map(str, image.GetSize()))}: "
        "ScarEnhance needs one 3D short-axis stack (split multi-phase / multi-TI series first)",
        path,
    )


def _reason(error: Exception) -> str:
    """SimpleITK errors carry lines of C++ context; keep the ITK message and its last detail line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return error.__class__.__name__
    message = next((line for line in lines if "ERROR:" in line), lines[-1])
    message = message.split("ERROR:", 1)[-1].strip()
    message = re.sub(r"^\w+\(0x[0-9a-fA-F]+\):\s*", "", message)  # drop "NrrdImageIO(0x55..): "
    detail = lines[-1]
    # ITK appends errno's text, which is stale ("No such file or directory" for a file that exists).
    if message not in detail and not detail.startswith("Reason:"):
        message = f"{message} {detail.split('] ', 1)[-1]}"
    return message
