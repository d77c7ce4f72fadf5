"""Random intensities for a label map (SynthSeg's generative model): each structure draws a Gaussian
mean and spread anew for every sample, with a spatially correlated texture.

Two regimes, chosen per sample:
- "lge": orderings an LGE scan plausibly shows: healthy myocardium nulled dark (or grey when the inversion
  time was off), blood bright, scar bright (darker or brighter than blood), fat bright, lungs and air black;
- "random": every structure uniform in [0, 1], any ordering, so that shape is the only reliable cue.
Intensities are relative (0 … ~1); acquisition.py scales, corrupts and quantises them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import structures as S

# (low, high) of the mean, relative to the LV blood pool's mean, for the "lge" regime
_LGE_RELATIVE = {
    S.AIR: (0.0, 0.04), S.LUNG: (0.0, 0.12), S.BODY: (0.1, 0.6), S.SUBCUTANEOUS_FAT: (0.4, 1.6),
    S.CHEST_MUSCLE: (0.08, 0.5), S.RIB: (0.02, 0.3), S.RIB_MARROW: (0.2, 1.0), S.SPINE: (0.1, 0.8),
    S.SPINAL_CANAL: (0.05, 0.9), S.PARASPINAL_MUSCLE: (0.08, 0.5), S.MEDIASTINUM: (0.2, 1.4),
    S.DESCENDING_AORTA: (0.3, 1.2), S.LIVER: (0.15, 0.7), S.STOMACH: (0.0, 0.8), S.SPLEEN: (0.15, 0.8),
    S.PERICARDIAL_FAT: (0.4, 1.6), S.PERICARDIAL_EFFUSION: (0.1, 1.0), S.RV_BLOOD: (0.6, 1.15),
    S.LEFT_ATRIUM: (0.5, 1.15), S.RIGHT_ATRIUM: (0.5, 1.15), S.AORTIC_ROOT: (0.3, 1.15),
    S.PULMONARY_ARTERY: (0.3, 1.15), S.LV_BLOOD: (1.0, 1.0),
}


def sample_intensities(rng: np.random.Generator, random_probability: float = 0.3,
                       short_ti_probability: float = 0.15,
                       min_scar_to_myocardium: float = 0.0,
                       scar_reach: tuple[float, float] = (0.35, 1.3)) -> tuple[str, np.ndarray, np.ndarray]:
    """(regime, means (COUNT,), standard deviations (COUNT,)) for one sample.

    ``short_ti_probability``: share of "lge" samples with a too-short inversion time, where the scar can
    be darker than the myocardium. ``min_scar_to_myocardium``: the least scar/myocardium mean ratio of
    "lge" samples (0: the drawn one). ``SynthRanges.lge_contrast`` sets no random or short-TI samples and a
    ratio of at least 1.3, so that scar is always visibly brighter than healthy myocardium, as LGE defines
    it (FACTS: 1.35–5.4 on real scans). ``scar_reach``: where the scar mean lies between the myocardium's
    (0) and the blood's (1), drawn uniformly; above 1 the scar is brighter than the blood pool. The default
    reaches 1.3× the blood; real scans reach further (FACTS: scar/myocardium median 2.6 against
    blood/myocardium 2.4, so half of real scars are brighter than the blood, some twice as bright).
    """
    if rng.random() < random_probability:
        means = rng.uniform(0.0, 1.0, S.COUNT)
        sds = rng.uniform(0.0, 0.15, S.COUNT)
        return "random", means, sds
    means = np.empty(S.COUNT)
    for label, (lo, hi) in _LGE_RELATIVE.items():
        means[label] = rng.uniform(lo, hi)
    # healthy myocardium: nulled (blood 1.6–6× brighter) or poorly nulled (grey, down to 1.1×)
    myo = 1.0 / rng.uniform(1.1, 6.0) if rng.random() < 0.2 else 1.0 / rng.uniform(1.6, 6.0)
    means[S.LV_MYOCARDIUM] = myo
    means[S.RV_WALL] = myo * rng.uniform(0.8, 1.6)
    means[S.PAPILLARY] = myo * rng.uniform(0.7, 1.8)
    means[S.TRABECULAE] = myo * rng.uniform(0.7, 2.5)
    # scar from well above the myocardium to above the blood (scar_reach); no-reflow dark inside it
    means[S.SCAR] = max(myo + rng.uniform(*scar_reach) * (1.0 - myo), min_scar_to_myocardium * myo)
    means[S.NO_REFLOW] = myo * rng.uniform(0.3, 1.5)
    if rng.random() < short_ti_probability:  # a too-short inversion time: myocardium bright, blood dark
        means[S.LV_MYOCARDIUM], means[S.LV_BLOOD] = rng.uniform(0.5, 1.0), rng.uniform(0.1, 0.5)
    scale = 1.0 / max(means.max(), 1e-6)
    means *= scale
    sds = means * rng.uniform(0.02, 0.25, S.COUNT)
    return "lge", means, sds


def texture(rng: np.random.Generator, shape: tuple[int, int], smoothness_px: float) -> np.ndarray:
    """Unit-variance Gaussian noise, spatially correlated over `smoothness_px` pixels (0: white)."""
    noise = rng.standard_normal(shape)
    if smoothness_px > 0:
        noise = ndimage.gaussian_filter(noise, smoothness_px, mode="reflect")
        noise /= max(float(noise.std()), 1e-6)
    return noise


def paint(labels: np.ndarray, means: np.ndarray, sds: np.ndarray, rng: np.random.Generator,
          smoothness_px: float) -> np.ndarray:
    """Image (H, W) float32: each structure's mean plus its spread times a correlated texture."""
    tex = texture(rng, labels.shape, smoothness_px)
    return (means[labels] + sds[labels] * tex).astype(np.float32)
