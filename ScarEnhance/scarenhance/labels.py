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


# Training maps only: where bright scar meets the bright blood pool. The network has neither class (it
# predicts myocardium on the scar, blood pool beside it); the marks let the heart model's loss weigh the
# endocardial border there, on both sides, so it neither loses the scar to the blood nor the blood to the wall.
TRAIN_SCAR = 3  # myocardium that is scar
TRAIN_BLOOD_BY_SCAR = 4  # blood pool within a few mm of scar
_FOLD = np.array([CLASS_BACKGROUND, CLASS_BLOOD, CLASS_MYOCARDIUM, CLASS_MYOCARDIUM, CLASS_BLOOD], np.uint8)


def heart_classes(labels: np.ndarray) -> np.ndarray:
    """Canonical labels → heart-model classes, uint8: 1 LV blood pool, 2 LV myocardium (scar counted as myocardium)."""
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, dtype=np.uint8)
    out[labels == BLOOD] = CLASS_BLOOD
    out[(labels == MYOCARDIUM) | (labels == SCAR)] = CLASS_MYOCARDIUM
    return out


def fold_scar(classes):
    """Training maps → heart-model classes (numpy arrays or torch tensors of integers)."""
    if isinstance(classes, np.ndarray):
        return _FOLD[classes]
    import torch

    return torch.as_tensor(_FOLD, device=classes.device).to(classes.dtype)[classes.long()]
