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

# The heart model's classes: what `scarenhance segment --labels-output` writes
CLASS_BACKGROUND, CLASS_BLOOD, CLASS_MYOCARDIUM = 0, 1, 2
CLASS_NAMES = {CLASS_BLOOD: "LV blood pool", CLASS_MYOCARDIUM: "LV myocardium"}


# Training maps only: myocardium that is scar. The network has no such class (it predicts myocardium
# there); the mark lets the heart model's loss weigh the pixels it most often calls blood pool.
TRAIN_SCAR = 3


def heart_classes(labels: np.ndarray, mark_scar: bool = False) -> np.ndarray:
    """Canonical labels → heart-model classes, uint8: 1 LV blood pool, 2 LV myocardium (scar counted as myocardium).

    mark_scar: scar pixels get TRAIN_SCAR instead of 2 (training maps; fold_scar undoes it)."""
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, dtype=np.uint8)
    out[labels == BLOOD] = CLASS_BLOOD
    out[labels == MYOCARDIUM] = CLASS_MYOCARDIUM
    out[labels == SCAR] = TRAIN_SCAR if mark_scar else CLASS_MYOCARDIUM
    return out


def fold_scar(classes):
    """Training maps → heart-model classes: TRAIN_SCAR becomes myocardium (numpy arrays or torch tensors)."""
    return classes.clip(max=CLASS_MYOCARDIUM)
