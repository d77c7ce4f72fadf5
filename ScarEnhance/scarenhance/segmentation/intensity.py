"""What the heart network sees: each slice's intensities mapped to [0, 1] by a recorded policy.

    x = normalise(slices, policy)           # slices (N, H, W) in [0, 255] from geometry.volume_to_slices
    policy = policy_of(metadata)            # from a model folder; old folders have none → "minmax"

- "minmax" (the round-1 models): slice / 255, i.e. the paper's per-slice min–max. One bright pixel
  (fat, a vessel; real LGE has them at 7–37× the myocardium) squeezes the heart into the bottom 5–15 %.
- "percentile" (new models): per slice, the `low`–`high` percentiles of the pixels above the slice's
  minimum (so registration masks, cropped corners and padding, all exactly at the minimum, do not count)
  map to 0 and 1, clipped. An outlier moves at most the top `100 − high` % of pixels.
Training (synth engine and site data) and inference call this same function, so they cannot disagree.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError

MINMAX = {"method": "minmax"}
PERCENTILE = {"method": "percentile", "low": 0.5, "high": 99.0, "exclude_minimum": True}
DEFAULT = PERCENTILE


def normalise(slices: np.ndarray, policy: dict = DEFAULT) -> np.ndarray:
    """(N, H, W) or (H, W) slices → float32 in [0, 1] by `policy` (see module docstring)."""
    x = np.asarray(slices, dtype=np.float32)
    if x.ndim == 2:
        return normalise(x[None], policy)[0]
    method = policy.get("method")
    if method == "minmax":
        lo = x.min(axis=(1, 2), keepdims=True)
        hi = x.max(axis=(1, 2), keepdims=True)
        return ((x - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)
    if method != "percentile":
        raise ModelError(f"unknown intensity normalisation {method!r} (known: minmax, percentile)")
    out = np.empty_like(x)
    for i, s in enumerate(x):
        values = s[s > s.min()] if policy.get("exclude_minimum", True) else s.ravel()
        if values.size < 16:  # (nearly) constant slice
            values = s.ravel()
        lo, hi = np.percentile(values, [float(policy["low"]), float(policy["high"])])
        out[i] = np.clip((s - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    return out


def policy_of(metadata: dict) -> dict:
    """The normalisation a model folder records (scarenhance.input.normalisation); none recorded: min–max."""
    policy = metadata.get("scarenhance", {}).get("input", {}).get("normalisation")
    return dict(policy) if policy else dict(MINMAX)
