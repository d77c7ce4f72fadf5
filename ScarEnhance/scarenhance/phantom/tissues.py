"""Tissues of a post-contrast short-axis slice and their inversion-recovery signal.

Each tissue has a post-contrast T1 (ms, 1.5 T, ~10–15 min after gadolinium) and a relative proton
density PD in [0, 1]. Late-enhancement imaging reads the magnitude of the inversion-recovery signal

    S = PD · |1 − 2·exp(−TI/T1) + exp(−TR/T1)|

with TI the inversion time, chosen so healthy myocardium is nulled, and TR the time between two
inversions (two heartbeats in a segmented LGE sequence). Gadolinium shortens T1 in proportion to the
extracellular volume, so scar (large ECV) recovers faster than remote myocardium and appears bright.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Tissue codes of the internal tissue map (uint8). Not the EMIDEC labels: see generate.py for those.
AIR, LUNG, FAT, MUSCLE, LIVER, MARROW, BLOOD, MYOCARDIUM, SCAR, NO_REFLOW = range(10)
NAMES = ("air", "lung", "fat", "muscle", "liver", "marrow", "blood", "myocardium", "scar", "no_reflow")


@dataclass(frozen=True)
class TissueProperties:
    """Per-tissue T1 (ms) and PD (relative), indexed by the tissue codes above; shapes (10,)."""

    t1: np.ndarray
    pd: np.ndarray

    def as_dict(self) -> dict:
        return {name: {"t1_ms": round(float(t), 1), "pd": round(float(p), 3)}
                for name, t, p in zip(NAMES, self.t1, self.pd) if name != "air"}


def sample_tissues(rng: np.random.Generator) -> TissueProperties:
    """Draw one patient's post-contrast T1 and PD values.

    Blood and scar T1 are drawn relative to remote myocardium, because their ratio (not the absolute
    values, which depend on dose and delay) decides the contrast. Scar ends up between ~0.7× and ~1.05×
    the T1 of blood, so it is sometimes brighter and sometimes darker than the blood pool.
    """
    t1 = np.empty(len(NAMES))
    pd = np.empty(len(NAMES))
    t1_myo = rng.uniform(400.0, 560.0)
    t1[MYOCARDIUM], pd[MYOCARDIUM] = t1_myo, rng.uniform(0.72, 0.80)
    t1[BLOOD], pd[BLOOD] = t1_myo * rng.uniform(0.60, 0.76), rng.uniform(0.90, 1.00)
    t1[SCAR], pd[SCAR] = t1[BLOOD] * rng.uniform(0.70, 1.05), rng.uniform(0.80, 0.90)
    # microvascular obstruction: contrast barely gets in, T1 stays near (or above) remote myocardium
    t1[NO_REFLOW], pd[NO_REFLOW] = t1_myo * rng.uniform(0.97, 1.12), pd[MYOCARDIUM] * rng.uniform(0.95, 1.05)
    t1[FAT], pd[FAT] = rng.uniform(230.0, 300.0), rng.uniform(0.85, 1.00)  # gadolinium does not reach fat
    # liver (short native T1, large ECV) ends a little below myocardium; skeletal muscle (small ECV)
    # takes up less gadolinium and stays longer, so it shows as mid-grey
    t1[LIVER], pd[LIVER] = t1_myo * rng.uniform(0.7, 1.0), rng.uniform(0.65, 0.80)
    t1[MUSCLE], pd[MUSCLE] = t1_myo * rng.uniform(1.25, 1.5), rng.uniform(0.62, 0.75)
    t1[MARROW], pd[MARROW] = rng.uniform(330.0, 450.0), rng.uniform(0.70, 0.85)
    t1[LUNG], pd[LUNG] = rng.uniform(850.0, 1200.0), rng.uniform(0.06, 0.14)
    t1[AIR], pd[AIR] = 1000.0, 0.0
    return TissueProperties(t1=t1, pd=pd)


def inversion_recovery(pd: np.ndarray, t1: np.ndarray, ti: float, tr: float) -> np.ndarray:
    """Magnitude inversion-recovery signal PD·|1 − 2e^(−TI/T1) + e^(−TR/T1)| (same shape as pd, t1)."""
    t1 = np.asarray(t1, dtype=np.float64)
    return np.asarray(pd) * np.abs(1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-tr / t1))


def null_time(t1: float, tr: float) -> float:
    """Inversion time (ms) at which a tissue with this T1 has zero signal: T1·ln(2 / (1 + e^(−TR/T1)))."""
    return float(t1 * np.log(2.0 / (1.0 + np.exp(-tr / t1))))
