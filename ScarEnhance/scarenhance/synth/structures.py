"""The structures the randomized synthesizer draws, and how they map onto the model's classes.

Every structure gets its own random intensity in every sample (appearance.py), so the network can only
tell them apart by shape and context. Three ids matter to the heart model: LV blood (with the papillary
muscles and trabeculae, which expert contours include in the cavity) and LV myocardium (scar and
no-reflow included); everything else is context, drawn so that the network learns what is *not* the LV.
"""

from __future__ import annotations

import numpy as np

from .. import labels as L

# ids of the synthetic label map, in painting order (a later structure covers an earlier one)
AIR = 0
BODY = 1  # generic soft tissue filling the body outline
SUBCUTANEOUS_FAT = 2
CHEST_MUSCLE = 3
LUNG = 4
RIB = 5
RIB_MARROW = 6
SPINE = 7  # vertebral body
SPINAL_CANAL = 8
PARASPINAL_MUSCLE = 9
MEDIASTINUM = 10  # mediastinal fat and soft tissue
DESCENDING_AORTA = 11
LIVER = 12
STOMACH = 13
SPLEEN = 14
PERICARDIAL_FAT = 15  # epicardial and pericardial fat: bright, touching the myocardium (scar mimic)
PERICARDIAL_EFFUSION = 16
RV_WALL = 17
RV_BLOOD = 18
LEFT_ATRIUM = 19
RIGHT_ATRIUM = 20
AORTIC_ROOT = 21
PULMONARY_ARTERY = 22
LV_MYOCARDIUM = 23
SCAR = 24
NO_REFLOW = 25
LV_BLOOD = 26
PAPILLARY = 27
TRABECULAE = 28

COUNT = 29
NAMES = {
    AIR: "air", BODY: "soft tissue", SUBCUTANEOUS_FAT: "subcutaneous fat", CHEST_MUSCLE: "chest wall muscle",
    LUNG: "lung", RIB: "rib", RIB_MARROW: "rib marrow", SPINE: "vertebra", SPINAL_CANAL: "spinal canal",
    PARASPINAL_MUSCLE: "paraspinal muscle", MEDIASTINUM: "mediastinum", DESCENDING_AORTA: "descending aorta",
    LIVER: "liver", STOMACH: "stomach", SPLEEN: "spleen", PERICARDIAL_FAT: "epicardial/pericardial fat",
    PERICARDIAL_EFFUSION: "pericardial effusion", RV_WALL: "RV wall", RV_BLOOD: "RV blood", LEFT_ATRIUM: "left atrium",
    RIGHT_ATRIUM: "right atrium", AORTIC_ROOT: "aortic root", PULMONARY_ARTERY: "pulmonary artery",
    LV_MYOCARDIUM: "LV myocardium", SCAR: "scar", NO_REFLOW: "no-reflow", LV_BLOOD: "LV blood pool",
    PAPILLARY: "papillary muscle", TRABECULAE: "trabeculae",
}

# synthetic id → canonical tissue class (labels.py): what targets and metrics use
_CANONICAL = np.full(COUNT, L.BACKGROUND, dtype=np.uint8)
_CANONICAL[[LV_BLOOD, PAPILLARY, TRABECULAE]] = L.BLOOD
_CANONICAL[LV_MYOCARDIUM] = L.MYOCARDIUM
_CANONICAL[[SCAR, NO_REFLOW]] = L.SCAR
_CANONICAL[[RV_BLOOD, RV_WALL, LEFT_ATRIUM, RIGHT_ATRIUM, AORTIC_ROOT, PULMONARY_ARTERY]] = L.OTHER


def to_canonical(structures: np.ndarray) -> np.ndarray:
    """Synthetic label map → canonical classes (0 background, 1 LV blood, 2 myocardium, 3 scar, 4 other heart)."""
    return _CANONICAL[np.asarray(structures, dtype=np.intp)]
