"""Realistic synthetic short-axis LGE cases: the project's own test and training data.

    case = generate_case(seed=7)            # PhantomCase(name, image int16, labels uint8 EMIDEC, info)
    paths = write_cases("out", n=20, seed=0)  # out/Case_001/Images/Case_001.nii.gz + Contours/...

Modules: tissues (T1/PD and the inversion-recovery signal), anatomy (chest and heart per plane),
scar (scar patterns), acquisition (TI, coil field, blur, Rician noise), generate (one case),
write (EMIDEC layout on disk).
"""

from .generate import PhantomCase, generate_case
from .write import canonical_labels, case_seed, write_cases

__all__ = ["PhantomCase", "canonical_labels", "case_seed", "generate_case", "write_cases"]
