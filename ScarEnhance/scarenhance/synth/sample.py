"""One randomized training slice: random anatomy → random contrast → random acquisition.

    s = synth_slice(seed=7)                       # the default training ranges
    s.image       (H, W) float32, arbitrary scale (int16-like or 8-bit values after quantisation)
    s.classes     (H, W) uint8: 0 background, 1 LV blood pool, 2 LV myocardium (scar included)
    s.canonical   (H, W) uint8 canonical tissue labels (labels.py: blood, myocardium, scar, other)
    s.structures  (H, W) uint8 ids of structures.py (what was drawn)

Deterministic for a seed and ranges. The grid is the heart model's (1.75 mm pixels by default), and
its field of view is drawn so that the heart covers 1.5–25 % of the slice, as real scans range from
a whole chest to a tight crop (FACTS: real MyoPS slices ≈ 3 %).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .. import labels as L
from . import acquisition, anatomy, appearance
from . import structures as S


@dataclass
class SynthRanges:
    """Every range the synthesizer draws from; the robustness benchmark widens them for unseen families."""

    heart_mm: tuple[float, float] = (42.0, 95.0)  # LV outer diameter at mid-ventricle
    levels: tuple[float, float] = (-0.08, 1.08)  # 0 base … 1 apex; beyond: slices without an LV
    wall_mm: tuple[float, float] = (3.0, 16.0)
    heart_fraction: tuple[float, float] = (0.015, 0.25)  # LV area / slice area, drawn log-uniformly
    warp_mm: tuple[float, float] = (0.0, 5.0)
    scar_probability: float = 0.7
    random_contrast: float = 0.3  # share of samples with a fully random (not LGE-like) contrast
    short_ti: float = 0.15  # share of LGE-like samples with a too-short inversion time (myocardium bright)
    min_scar_ratio: float = 0.0  # least scar / healthy-myocardium mean of LGE-like samples (0: as drawn)
    scar_reach: tuple[float, float] = (0.35, 1.3)  # LGE-like scar mean: myocardium + u·(blood − myocardium), u in this range
    texture_px: tuple[float, float] = (0.0, 1.5)
    partial_volume: float = 0.4  # probability of blending in a neighbouring level (5–12 mm slices)
    spacing_mm: float = 1.75
    max_side_px: int = 320
    acquisition: acquisition.AcquisitionRanges = field(default_factory=acquisition.AcquisitionRanges)
    effects: dict = field(default_factory=dict)  # effect name → probability, overriding acquisition.EFFECTS

    def lge_contrast(self) -> "SynthRanges":
        """These ranges with LGE-like contrast only: scar visibly brighter than healthy myocardium in every
        sample (no random or short-TI contrasts). For enhancer experiments: in a random-contrast sample the
        target brightens a scar that nothing in the image marks. The README records what a model trained
        on it did (it brightened healthy myocardium more than the shipped one)."""
        return dataclasses.replace(self, random_contrast=0.0, short_ti=0.0, min_scar_ratio=1.3)


@dataclass
class SynthSlice:
    image: np.ndarray
    classes: np.ndarray
    canonical: np.ndarray
    structures: np.ndarray
    info: dict


def synth_slice(seed: "int | np.random.SeedSequence | list[int]", ranges: "SynthRanges | None" = None) -> SynthSlice:
    r = ranges or SynthRanges()
    rng = np.random.default_rng(seed)
    anat = anatomy.sample_anatomy(rng, r.heart_mm, r.wall_mm, r.levels, scar_probability=r.scar_probability)
    grid = _sample_grid(rng, anat, r)
    structures = anatomy.render(anat, grid)
    regime, means, sds = appearance.sample_intensities(rng, r.random_contrast, r.short_ti, r.min_scar_ratio, r.scar_reach)
    smooth = float(rng.uniform(*r.texture_px))
    image = appearance.paint(structures, means, sds, rng, smooth)
    pv_weight = 0.0
    if rng.random() < r.partial_volume:  # a thick slice also holds part of its neighbour's anatomy
        pv_weight = float(rng.uniform(0.1, 0.45))
        neighbour = dataclasses.replace(anat, lv_radius=anat.lv_radius * float(rng.uniform(0.85, 1.12)),
                                        wall=anat.wall * float(rng.uniform(0.85, 1.15)))
        shifted = dataclasses.replace(grid, centre_mm=tuple(c + float(rng.uniform(-2.5, 2.5)) for c in grid.centre_mm))
        other = appearance.paint(anatomy.render(neighbour, shifted), means, sds, rng, smooth)
        image = (1 - pv_weight) * image + pv_weight * other
    canonical = S.to_canonical(structures)
    classes = L.heart_classes(canonical)
    acq_r = dataclasses.replace(r.acquisition, output_spacing_mm=r.spacing_mm)
    image, kept, applied = acquisition.corrupt(image, classes, rng, acq_r, r.effects)
    canonical = np.where(kept == classes, canonical, L.BACKGROUND).astype(np.uint8)  # blanked pixels lose their labels
    structures = np.where(kept == classes, structures, S.AIR).astype(np.uint8)
    info = {"level": float(anat.level), "lv_diameter_mm": float(2 * anat.lv_radius), "scar": anat.scar["pattern"], "contrast": regime,
            "shape": list(grid.shape), "partial_volume": pv_weight, "effects": applied}
    return SynthSlice(image=image.astype(np.float32), classes=kept.astype(np.uint8), canonical=canonical,
                      structures=structures, info=info)


def _sample_grid(rng: np.random.Generator, anat: anatomy.Anatomy, r: SynthRanges) -> anatomy.Grid:
    diameter = 2 * anat.lv_radius / max(0.25, np.sqrt(max(0.0, 1.0 - 0.8 * max(0.0, anat.level) ** 2)))
    fraction = float(np.exp(rng.uniform(np.log(r.heart_fraction[0]), np.log(r.heart_fraction[1]))))
    side = np.sqrt(np.pi / 4 * diameter ** 2 / fraction)
    aspect = float(np.exp(rng.uniform(-0.25, 0.25)))
    shape = tuple(int(np.clip(round(side * a / r.spacing_mm), 32, r.max_side_px)) for a in (aspect ** 0.5, aspect ** -0.5))
    # the LV anywhere that keeps it inside the field of view (mostly near the centre, as in real scans)
    room = [max(0.0, n * r.spacing_mm / 2 - 0.6 * diameter) for n in shape[::-1]]
    centre = tuple(float(rng.uniform(-1, 1) * q * (0.4 if rng.random() < 0.7 else 1.0)) for q in room)
    return anatomy.Grid(shape=shape, spacing_mm=r.spacing_mm, centre_mm=centre, angle=float(rng.uniform(-np.pi, np.pi)),
                        mirrored=bool(rng.random() < 0.5), warp_mm=float(rng.uniform(*r.warp_mm)),
                        warp_scale_mm=float(rng.uniform(20, 60)), warp_seed=int(rng.integers(0, 2**31 - 1)))
