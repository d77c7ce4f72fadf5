"""Write phantom cases in the EMIDEC layout: <out>/Case_XXX/Images/Case_XXX.nii.gz and
<out>/Case_XXX/Contours/Case_XXX.nii.gz (same grid), plus the case's parameters as Case_XXX.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..progress import ProgressFn, no_progress
from .generate import PhantomCase, generate_case

SEED_STRIDE = 100_003  # prime > any case count, so different seeds give disjoint case seeds


def case_seed(seed: int, index: int) -> int:
    """Seed of case `index` (1-based) of a set written with `seed`."""
    return int(seed) * SEED_STRIDE + int(index)


def case_name(index: int) -> str:
    return f"Case_{index:03d}"


def new_case_folders(out_dir: "str | Path", n: int) -> list[Path]:
    """OUT/Case_001 … Case_n, none of which may exist yet (InputError naming the first that does)."""
    if n < 1:
        raise InputError(f"the number of cases must be at least 1, got {n}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("is a file, not a folder", out)
    folders = [out / case_name(i) for i in range(1, n + 1)]
    existing = [f for f in folders if f.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InputError(f"case folder already exists{more}; choose another --out folder or remove it first", existing[0])
    return folders


def write_cases(out_dir: "str | Path", n: int, seed: int = 0, progress: Optional[ProgressFn] = None,
                **overrides) -> list[Path]:
    """Write n cases (Case_001 … Case_n) under out_dir; case i is generate_case(case_seed(seed, i)).

    Returns the case folders. Refuses (InputError, nothing written) when any of the case folders
    already exists, so earlier data is never overwritten.
    """
    progress = progress or no_progress
    folders = new_case_folders(out_dir, n)
    for i, folder in enumerate(folders, start=1):
        case = generate_case(case_seed(seed, i), **overrides)
        name = case_name(i)
        case.name = name
        case.info["name"] = name
        _write_case(folder, case)
        progress(i / n, f"wrote {name}")
    return folders


def canonical_labels(case: PhantomCase) -> np.ndarray:
    """The case's labels as canonical classes (labels.py) through the EMIDEC reader's mapping,
    (Z, H, W) uint8: no-reflow counts as scar."""
    from ..datasets import EMIDEC_LABELS, map_labels

    return map_labels(sitk.GetArrayFromImage(case.labels), EMIDEC_LABELS)


def _write_case(folder: Path, case: PhantomCase) -> None:
    from ..io import write_image

    name = folder.name
    (folder / "Images").mkdir(parents=True)
    (folder / "Contours").mkdir()
    write_image(case.image, folder / "Images" / f"{name}.nii.gz")
    write_image(case.labels, folder / "Contours" / f"{name}.nii.gz")
    (folder / f"{name}.json").write_text(json.dumps(case.info, indent=1, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
