"""Canonical tissue classes. Every dataset reader maps its own label values onto these."""

import numpy as np

BACKGROUND = 0
BLOOD = 1  # LV blood pool (cavity)
MYOCARDIUM = 2  # healthy or oedematous LV myocardium
SCAR = 3  # infarct / fibrosis, no-reflow included
OTHER = 4  # labelled structures outside the LV (e.g. RV blood)

NAMES = {BACKGROUND: "background", BLOOD: "blood", MYOCARDIUM: "myocardium", SCAR: "scar", OTHER: "other"}
HEART_LABELS = (BLOOD, MYOCARDIUM, SCAR)  # the paper's ROI: m = mask_scar + mask_blood + mask_myo


def heart_mask(labels: np.ndarray) -> np.ndarray:
    """Boolean heart ROI (blood pool + myocardium + scar) from a canonical label array."""
    return np.isin(labels, HEART_LABELS)
