"""Families of test data that no shipped model trained on, for the cross-family benchmarks.

    for case in family_cases("phantom-real-lge", count=12, seed=9001):
        case.name, case.image (sitk, int16), case.labels (numpy z/y/x canonical labels on the image grid)

- "phantom": the project's own phantom generator (scarenhance.phantom), as the demo and tests use it.
- "phantom-real-lge": phantoms re-made to the measured facts of real LGE (FACTS: 0.73 mm pixels, 350 mm
  field of view so the heart is ≈ 3 % of the slice, 2–6 oblique slices 12 mm apart, a third of the
  pixels exactly 0 behind registration masks and cropped corners, bright outliers at 7–37× the
  myocardium, noisy myocardium with SD/mean 0.4–0.8, int16).
- "synth-unseen": the randomized engine (scarenhance.synth) with every range the training used moved
  outside it: hearts of 30–42 or 95–115 mm, the heart 0.6–1.5 % or 25–35 % of the slice, 2.6–3.5 mm
  acquisitions, stronger noise, half the samples with random contrast, coherent oblique stacks.
Each case depends only on (family, seed, index).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import SimpleITK as sitk

from .. import labels as L

FAMILIES = ("phantom", "phantom-real-lge", "synth-unseen")


@dataclass
class EvalCase:
    name: str
    image: sitk.Image
    labels: np.ndarray  # canonical labels, numpy (z, y, x) order on the image's grid
    contrast: str = "lge"  # "random" when the intensities follow no LGE ordering (synth-unseen's half)


def family_cases(family: str, count: int, seed: int = 9001) -> Iterator[EvalCase]:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}: choose one of {', '.join(FAMILIES)}")
    for i in range(1, count + 1):
        yield _BUILDERS[family](seed, i)


def _phantom(seed: int, i: int) -> EvalCase:
    from ..phantom import canonical_labels, case_seed, generate_case

    case = generate_case(case_seed(seed, i))
    return EvalCase(f"phantom-{i:03d}", case.image, canonical_labels(case))


def _phantom_real_lge(seed: int, i: int) -> EvalCase:
    from ..phantom import canonical_labels, case_seed, generate_case

    rng = np.random.default_rng([seed, i, 31])
    case = generate_case(case_seed(seed + 17, i), spacing=0.73, size=(480, 480), slice_spacing=12.0, oblique=True,
                         n_slices=int(rng.integers(2, 7)))
    labels = canonical_labels(case)
    image = sitk.GetArrayFromImage(case.image).astype(np.float64)
    image = _as_real_lge(image, labels, rng)
    out = sitk.GetImageFromArray(np.clip(np.rint(image), 0, 32767).astype(np.int16))
    out.CopyInformation(case.image)
    return EvalCase(f"real-lge-{i:03d}", out, labels)


def _as_real_lge(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The measured traits of real LGE that the phantom lacks (module docstring), slice by slice."""
    myo = labels == L.MYOCARDIUM
    mu = float(image[myo].mean()) if myo.any() else float(np.percentile(image, 50))
    # noisy healthy myocardium: magnitude noise until SD/mean reaches the target
    target = rng.uniform(0.4, 0.8) * mu
    sd_now = float(image[myo].std()) if myo.any() else 0.0
    sigma = np.sqrt(max(0.0, target ** 2 - sd_now ** 2))
    image = np.hypot(image + rng.normal(0, sigma, image.shape), rng.normal(0, sigma, image.shape))
    z, h, w = image.shape
    yy, xx = np.mgrid[:h, :w]
    heart = L.heart_mask(labels)
    cy, cx = (np.argwhere(heart.any(axis=0)).mean(axis=0) if heart.any() else (h / 2, w / 2))
    for k in range(z):
        # bright outliers (fat, vessels) away from the heart: 7–37 × the myocardium
        for _ in range(int(rng.integers(5, 20))):
            py, px = int(rng.integers(0, h)), int(rng.integers(0, w))
            if np.hypot(py - cy, px - cx) < 70:
                continue
            r = rng.uniform(1.0, 5.0)
            image[k][(yy - py) ** 2 + (xx - px) ** 2 <= r * r] = rng.uniform(7, 37) * mu
    # registration mask: zero outside a rotated rectangle that keeps the heart; some cropped corners
    t = rng.uniform(-0.6, 0.6)
    du = np.cos(t) * (xx - cx) + np.sin(t) * (yy - cy)
    dv = -np.sin(t) * (xx - cx) + np.cos(t) * (yy - cy)
    keep = (np.abs(du) <= rng.uniform(0.28, 0.42) * w) & (np.abs(dv) <= rng.uniform(0.28, 0.42) * h)
    if rng.random() < 0.5:
        keep &= (yy + xx > rng.uniform(0.1, 0.3) * (h + w))
    image[:, ~keep] = 0.0
    return image


def _synth_unseen(seed: int, i: int) -> EvalCase:
    from ..synth import SynthRanges, synth_slice
    from ..synth.acquisition import AcquisitionRanges
    from ..synth.stack import synth_stack

    rng = np.random.default_rng([seed, i, 53])
    small = rng.random() < 0.5
    ranges = SynthRanges(
        heart_mm=(30.0, 42.0) if small else (95.0, 115.0),
        heart_fraction=(0.006, 0.015) if rng.random() < 0.5 else (0.25, 0.35),
        random_contrast=0.5, spacing_mm=float(rng.uniform(0.7, 2.2)), max_side_px=560,
        acquisition=AcquisitionRanges(pixel_mm=(2.6, 3.5), noise=(0.12, 0.2)),
    )
    ranges = dataclasses.replace(ranges, acquisition=dataclasses.replace(ranges.acquisition, output_spacing_mm=ranges.spacing_mm))
    stack_seed = int(rng.integers(0, 2**31 - 1))
    image, canonical = synth_stack(stack_seed, int(rng.integers(3, 9)), ranges, slice_spacing_mm=float(rng.uniform(6, 12)))
    contrast = synth_slice(stack_seed, ranges).info["contrast"]  # a stack's slices share its contrast draw (stack.py)
    return EvalCase(f"synth-unseen-{i:03d}", image, sitk.GetArrayFromImage(canonical), contrast)


_BUILDERS = {"phantom": _phantom, "phantom-real-lge": _phantom_real_lge, "synth-unseen": _synth_unseen}
