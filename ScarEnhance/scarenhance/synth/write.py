"""Randomized synthetic cases on disk, in the EMIDEC layout every trainer reads.

    write_synth_cases("data/synth", n=300, seed=7)   # Case_001/Images/Case_001.nii.gz + Contours/…

Case i is a coherent stack (stack.py) of synth seed [seed, i]: 2–10 slices 6–12 mm apart from base
towards apex, 0.7–2.0 mm pixels, oblique. Contours carry EMIDEC values (1 cavity, 2 myocardium,
3 infarct); structures outside the LV are 0, as in EMIDEC. Existing case folders are never overwritten.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from .. import labels as L
from ..progress import ProgressFn, no_progress
from .sample import SynthRanges
from .stack import synth_stack

_EMIDEC = np.zeros(256, np.uint8)
_EMIDEC[[L.BLOOD, L.MYOCARDIUM, L.SCAR]] = [1, 2, 3]


def write_synth_cases(out_dir: "str | Path", n: int, seed: int = 0, ranges: "SynthRanges | None" = None,
                      progress: Optional[ProgressFn] = None) -> list[Path]:
    from ..phantom.write import new_case_folders

    progress = progress or no_progress
    folders = new_case_folders(out_dir, n)
    base = ranges or SynthRanges()
    for i, folder in enumerate(folders, start=1):
        rng = np.random.default_rng([seed, i, 101])
        spacing = float(rng.uniform(0.7, 2.0))
        r = dataclasses.replace(base, spacing_mm=spacing, max_side_px=int(min(base.max_side_px, 400, 300 / spacing)),
                                acquisition=dataclasses.replace(base.acquisition, output_spacing_mm=spacing))
        first = float(rng.uniform(-0.05, 0.3))
        image, canonical = synth_stack(int(rng.integers(0, 2**31 - 1)), int(rng.integers(2, 11)), r,
                                       slice_spacing_mm=float(rng.uniform(6, 12)), first_level=first,
                                       last_level=float(rng.uniform(max(first + 0.2, 0.6), 1.02)))
        contours = sitk.GetImageFromArray(_EMIDEC[sitk.GetArrayFromImage(canonical)])
        contours.CopyInformation(canonical)
        for sub, img in (("Images", image), ("Contours", contours)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(img, str(folder / sub / f"{folder.name}.nii.gz"), useCompression=True)
        progress(i / n, f"wrote {folder.name}")
    return folders
