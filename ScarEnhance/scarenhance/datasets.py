"""Dataset readers: one API over EMIDEC, MyoPS 2020 and a generic images/ + labels/ layout.

Every reader yields ``Case(name, image, labels, image_path, label_path)`` where ``labels`` is a uint8
``sitk.Image`` of canonical classes (``scarenhance.labels``: 0 background, 1 blood, 2 myocardium,
3 scar, 4 other) carrying the image's exact geometry.

Layouts (``layout="auto"`` picks the one that fits ``root``):

- ``emidec``: ``<case>/Images/<case>.nii.gz`` + ``<case>/Contours/<case>.nii.gz``; any case folder
  name (``Case_N012``, ``Case_P045``, ...), ``.nii`` or ``.nii.gz`` (or NRRD/MHA), integer or float
  label images. Labels 0 background, 1 LV cavity → blood, 2 myocardium, 3 infarct → scar,
  4 no-reflow → scar.
- ``myops``: ``<case>_LGE.nii.gz`` (the challenge's ``_DE`` name works too) + ``<case>_gd.nii.gz``,
  in ``root`` or one folder below it (the challenge ships labels in a separate folder); the C0 and
  T2 files beside them are ignored. Labels 200 LV myocardium, 500 LV blood, 600 RV → other,
  1220 edema → myocardium, 2221 scar.
- ``generic``: ``images/<name>.<ext>`` + ``labels/<name>.<ext>`` (matched by name, extensions may
  differ; an image may also be a DICOM series folder) and ``labels.json`` mapping class names to
  label values, e.g. ``{"blood": [1], "myocardium": [2], "scar": [3, 4], "other": [5]}``;
  value 0 is background unless the map says otherwise.

Problems are ``InputError``s naming the file: missing label file, image/label geometry mismatch
(naming both files and what differs), label values the layout does not know (listing them and the
expected ones), 4D or unreadable files, an empty folder or one that matches no layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional

import numpy as np
import SimpleITK as sitk

from . import labels as L
from .errors import InputError
from .io import DICOM_EXTENSIONS, READ_EXTENSIONS, image_extension, read_image, strip_image_extension

LAYOUTS = ("emidec", "myops", "generic")

# Source label value → canonical class.
EMIDEC_LABELS: dict[int, int] = {0: L.BACKGROUND, 1: L.BLOOD, 2: L.MYOCARDIUM, 3: L.SCAR, 4: L.SCAR}
MYOPS_LABELS: dict[int, int] = {0: L.BACKGROUND, 200: L.MYOCARDIUM, 500: L.BLOOD, 600: L.OTHER, 1220: L.MYOCARDIUM, 2221: L.SCAR}

_MYOPS_IMAGE_SUFFIXES = ("_LGE", "_DE")
_MYOPS_LABEL_SUFFIX = "_gd"
_CLASS_BY_NAME = {name: value for value, name in L.NAMES.items()}

# Geometry tolerances: label files written by another tool (float32 NIfTI headers, qform vs sform)
# differ from the image in the last digits; anything larger is a real mismatch.
SPACING_RTOL = 1e-4
DIRECTION_ATOL = 1e-4
ORIGIN_RTOL = 1e-4  # of max(1 mm, |origin|, spacing)


@dataclass
class Case:
    """One image with its canonical labels. ``labels`` is None only when read with require_labels=False."""

    name: str
    image: sitk.Image
    labels: Optional[sitk.Image]
    image_path: Path
    label_path: Optional[Path]


# ----------------------------------------------------------------------------------------------
# Public API


def detect_layout(root: "str | Path") -> str:
    """'emidec', 'myops' or 'generic' for the folder ``root``; InputError when none fits."""
    root = _existing_folder(root)
    if (root / "images").is_dir():
        return "generic"
    if _emidec_case_folders(root):
        return "emidec"
    if _myops_images(root):
        return "myops"
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise InputError("empty folder: no cases to read", root)
    shown = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in entries)[:8])
    raise InputError(
        "no known dataset layout. Expected EMIDEC (<case>/Images/<case>.nii.gz + <case>/Contours/<case>.nii.gz), "
        "MyoPS (<case>_LGE.nii.gz + <case>_gd.nii.gz) or generic (images/ + labels/ + labels.json); "
        f"found: {shown}{' ...' if len(entries) > 8 else ''}",
        root,
    )


def list_cases(root: "str | Path", layout: str = "auto") -> list[str]:
    """Sorted case names in ``root``, from file names only (nothing is read)."""
    root, layout = _resolve(root, layout)
    if layout == "emidec":
        names = [p.name for p in _emidec_case_folders(root)]
    elif layout == "myops":
        names = list(_myops_images(root))
    else:
        names = list(_generic_images(root))
    if not names:
        raise InputError(f"no cases found for the {layout} layout", root)
    return sorted(names)


def load_case(root: "str | Path", name: str, layout: str = "auto", require_labels: bool = True) -> Case:
    """Read one case. With ``require_labels=False`` a case without a label file gets labels=None."""
    root, layout = _resolve(root, layout)
    if layout == "emidec":
        image_path, label_path, mapping = _emidec_paths(root, name)
    elif layout == "myops":
        image_path, label_path, mapping = _myops_paths(root, name)
    else:
        image_path, label_path, mapping = _generic_paths(root, name)

    image = read_image(image_path)
    if not label_path.exists():
        if require_labels:
            raise InputError(f"label file missing for case {name!r} (image: {image_path})", label_path)
        return Case(name, image, None, image_path, None)
    label_image = read_image(label_path)
    check_same_geometry(image, image_path, label_image, label_path)
    canonical = map_labels(sitk.GetArrayViewFromImage(label_image), mapping, label_path)
    labels = sitk.GetImageFromArray(canonical)
    labels.CopyInformation(image)  # equal within tolerance: give downstream filters the exact grid
    return Case(name, image, labels, image_path, label_path)


def iter_cases(root: "str | Path", layout: str = "auto", require_labels: bool = True) -> Iterator[Case]:
    """Read every case in ``root``, one at a time (sorted by name)."""
    root, layout = _resolve(root, layout)
    for name in list_cases(root, layout):
        yield load_case(root, name, layout, require_labels)


def map_labels(values: np.ndarray, mapping: Mapping[int, int], path: "str | Path | None" = None) -> np.ndarray:
    """Source label array → canonical uint8 array of the same shape.

    Accepts any numeric dtype; float labels must hold whole numbers (0.0, 1.0, ...). Raises
    InputError naming ``path`` listing values that are not integral or not in ``mapping``.
    """
    values = np.asarray(values)
    uniques, inverse = np.unique(values, return_inverse=True)
    if np.issubdtype(uniques.dtype, np.floating):
        if not np.all(np.isfinite(uniques)):
            raise InputError("label image holds NaN or infinite values", path)
        rounded = np.rint(uniques)
        fractional = uniques[np.abs(uniques - rounded) > 1e-3]
        if fractional.size:
            raise InputError(
                f"label image holds non-integer values {_list_values(fractional)}; "
                f"expected label values {_list_values(sorted(mapping))}",
                path,
            )
        uniques = rounded
    uniques = uniques.astype(np.int64)
    unknown = [int(v) for v in uniques if int(v) not in mapping]
    if unknown:
        raise InputError(
            f"unknown label values {_list_values(unknown)}; expected label values {_list_values(sorted(mapping))}",
            path,
        )
    lut = np.array([mapping[int(v)] for v in uniques], dtype=np.uint8)
    return lut[inverse.reshape(values.shape)]


def check_same_geometry(image: sitk.Image, image_path: "str | Path", other: sitk.Image, other_path: "str | Path") -> None:
    """InputError (naming both files and what differs) unless the two grids match within tolerance."""
    problems = []
    if image.GetSize() != other.GetSize():
        problems.append(f"size {_fmt(other.GetSize())} vs {_fmt(image.GetSize())} in the image")
    else:
        s1, s2 = np.array(image.GetSpacing()), np.array(other.GetSpacing())
        if np.any(np.abs(s1 - s2) > SPACING_RTOL * np.maximum(np.abs(s1), np.abs(s2))):
            problems.append(f"spacing {_fmt(s2)} vs {_fmt(s1)} mm in the image")
        o1, o2 = np.array(image.GetOrigin()), np.array(other.GetOrigin())
        scale = max(1.0, float(np.abs(o1).max()), float(s1.max()))
        if np.any(np.abs(o1 - o2) > ORIGIN_RTOL * scale):
            problems.append(f"origin {_fmt(o2)} vs {_fmt(o1)} mm in the image")
        d1, d2 = np.array(image.GetDirection()), np.array(other.GetDirection())
        if np.any(np.abs(d1 - d2) > DIRECTION_ATOL):
            problems.append(f"direction {_fmt(d2)} vs {_fmt(d1)} in the image")
    if problems:
        raise InputError(
            f"geometry does not match its image {image_path}: " + "; ".join(problems),
            other_path,
        )


# ----------------------------------------------------------------------------------------------
# Layout helpers


def _resolve(root: "str | Path", layout: str) -> tuple[Path, str]:
    root = _existing_folder(root)
    if layout == "auto":
        return root, detect_layout(root)
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; choose one of auto, {', '.join(LAYOUTS)}", root)
    return root, layout


def _existing_folder(root: "str | Path") -> Path:
    root = Path(root)
    if not root.exists():
        raise InputError("dataset folder not found", root)
    if not root.is_dir():
        raise InputError("expected a dataset folder, found a file", root)
    return root


def _is_image(path: Path) -> bool:
    return not path.name.startswith(".") and (
        (path.is_file() and image_extension(path) in READ_EXTENSIONS) or (path.is_dir())
    )


def _find_image(folder: Path, stem: str) -> Optional[Path]:
    """``folder/stem.<any image extension>``; InputError when several extensions exist."""
    if not folder.is_dir():
        return None
    hits = sorted(p for p in folder.iterdir() if _is_image(p) and strip_image_extension(p.name) == stem)
    if len(hits) > 1:
        raise InputError(f"several files for {stem!r}: {', '.join(p.name for p in hits)}; keep one", folder)
    return hits[0] if hits else None


# EMIDEC --------------------------------------------------------------------------------------


def _emidec_case_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "Images").is_dir())


def _emidec_paths(root: Path, name: str) -> tuple[Path, Path, dict[int, int]]:
    case = root / name
    images = case / "Images"
    if not images.is_dir():
        raise InputError(f"no EMIDEC case {name!r} (expected {name}/Images/{name}.nii.gz)", images)
    image = _find_image(images, name)
    if image is None:  # someone else's naming: accept the folder's only image
        files = [p for p in sorted(images.iterdir()) if p.is_file() and image_extension(p) in READ_EXTENSIONS]
        if len(files) != 1:
            found = ", ".join(p.name for p in files) or "no image file"
            raise InputError(f"expected the image {name}.nii.gz; found {found}", images)
        image = files[0]
    ext = image_extension(image)
    label = _find_image(case / "Contours", strip_image_extension(image.name)) or (
        case / "Contours" / f"{strip_image_extension(image.name)}{ext}"
    )
    return image, label, EMIDEC_LABELS


# MyoPS ---------------------------------------------------------------------------------------


def _myops_files(root: Path) -> list[Path]:
    """NIfTI/NRRD/MHA files in ``root`` and its direct subfolders (MyoPS ships labels separately)."""
    files = [p for p in root.iterdir() if p.is_file()]
    for sub in root.iterdir():
        if sub.is_dir() and not sub.name.startswith("."):
            files += [p for p in sub.iterdir() if p.is_file()]
    return [p for p in files if not p.name.startswith(".") and image_extension(p) in READ_EXTENSIONS]


def _myops_split(path: Path, suffixes: tuple[str, ...]) -> Optional[str]:
    stem = strip_image_extension(path.name)
    for suffix in suffixes:
        if stem.upper().endswith(suffix.upper()) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return None


def _myops_images(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in _myops_files(root):
        name = _myops_split(path, _MYOPS_IMAGE_SUFFIXES)
        if name is None:
            continue
        if name in found:
            raise InputError(f"two LGE images for case {name!r}: {found[name]} and {path}", root)
        found[name] = path
    return found


def _myops_paths(root: Path, name: str) -> tuple[Path, Path, dict[int, int]]:
    images = _myops_images(root)
    if name not in images:
        raise InputError(f"no MyoPS case {name!r} (expected {name}_LGE.nii.gz)", root)
    image = images[name]
    labels = [p for p in _myops_files(root) if _myops_split(p, (_MYOPS_LABEL_SUFFIX,)) == name]
    if len(labels) > 1:
        raise InputError(f"several label files for case {name!r}: {', '.join(map(str, labels))}", root)
    label = labels[0] if labels else image.parent / f"{name}{_MYOPS_LABEL_SUFFIX}{image_extension(image)}"
    return image, label, MYOPS_LABELS


# generic -------------------------------------------------------------------------------------


def _generic_images(root: Path) -> dict[str, Path]:
    images = root / "images"
    found: dict[str, Path] = {}
    for path in sorted(images.iterdir()):
        if not _is_image(path) or (path.is_file() and image_extension(path) in DICOM_EXTENSIONS):
            continue
        name = strip_image_extension(path.name)
        if name in found:
            raise InputError(f"several images named {name!r}: {found[name].name}, {path.name}; keep one", images)
        found[name] = path
    return found


def _generic_paths(root: Path, name: str) -> tuple[Path, Path, dict[int, int]]:
    images = _generic_images(root)
    if name not in images:
        raise InputError(f"no image named {name!r}", root / "images")
    image = images[name]
    label = _find_image(root / "labels", name) or root / "labels" / f"{name}{image_extension(image) or '.nii.gz'}"
    return image, label, read_label_map(root / "labels.json")


def read_label_map(path: "str | Path") -> dict[int, int]:
    """Parse a generic ``labels.json`` ({"blood": [1], "scar": [3, 4], ...}) into value → canonical class."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            'label map missing: the generic layout needs labels.json like {"blood": [1], "myocardium": [2], "scar": [3]}',
            path,
        )
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read the label map: {e}", path) from e
    if not isinstance(spec, dict):
        raise InputError('label map must be a JSON object like {"blood": [1], "myocardium": [2]}', path)
    mapping: dict[int, int] = {}
    for class_name, values in spec.items():
        if class_name not in _CLASS_BY_NAME:
            raise InputError(f"unknown class {class_name!r}; classes are {', '.join(_CLASS_BY_NAME)}", path)
        values = [values] if isinstance(values, int) else values
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise InputError(f"class {class_name!r} must map to a list of integer label values, got {values!r}", path)
        for v in values:
            if v in mapping and mapping[v] != _CLASS_BY_NAME[class_name]:
                raise InputError(f"label value {v} is given to two classes", path)
            mapping[v] = _CLASS_BY_NAME[class_name]
    mapping.setdefault(0, L.BACKGROUND)
    return mapping


def _list_values(values) -> str:
    values = [int(v) if float(v).is_integer() else float(v) for v in values]
    shown = ", ".join(str(v) for v in values[:20])
    return f"[{shown}{', ...' if len(values) > 20 else ''}]"


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v) + 0.0:.6g}" for v in values) + ")"  # + 0.0: no "-0"
