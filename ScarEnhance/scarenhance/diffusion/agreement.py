"""What the k samples agree on: each voxel's mean change, shrunk toward zero by its standard error.

The paper's output is the plain mean of the k samples. A denoiser trained with the absolute error (0.6.0 to
0.8.0) commits in every sample: a pixel it reads as scar in one sample and as healthy myocardium in the next
is brightened fully in one and not at all in the other, and the mean brightens it by a share of the scar's
boost. Spread over healthy myocardium that might be scar, those shares are a false scar: on the dark, noisy
myocardium of real LGE a fraction of a grey level is already a few per cent (README, "What the k samples agree
on").

`agreed_mean` soft-thresholds each voxel's mean change by z standard errors of that mean (the samples' SD
with Bessel's correction, over √k). A change that every sample makes stays nearly whole; one that only some
make shrinks or vanishes. It never reverses a change or makes one larger, and it leaves every voxel the
samples did not change as it was. z = 0 is the paper's plain mean; with k = 1 there is no spread to judge,
so the one sample is returned as it is.
"""

from __future__ import annotations

import numpy as np

DEFAULT_AGREEMENT = 1.0  # standard errors; measured on the benchmark families (README), not on real scans


def agreed_mean(samples: np.ndarray, original: np.ndarray, z: float = DEFAULT_AGREEMENT) -> np.ndarray:
    """samples (k, ...) and the original (...) in the same units → float64 (...): the samples' mean, each
    voxel's change from `original` soft-thresholded by z standard errors of that mean."""
    samples = np.asarray(samples, np.float64)
    original = np.asarray(original, np.float64)
    mean = samples.mean(axis=0)
    k = samples.shape[0]
    if z == 0 or k < 2:
        return mean
    change = mean - original
    standard_error = samples.std(axis=0, ddof=1) / np.sqrt(k)
    return original + np.sign(change) * np.maximum(np.abs(change) - z * standard_error, 0.0)
