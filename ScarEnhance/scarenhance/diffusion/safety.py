"""A label-free safety check of an enhancement, slice by slice, from the heart model's myocardium.

Without ground truth nobody knows where the scar is, but two things must never happen: the contrast
inside the myocardium falls (scar made less visible), or the dark, healthy-looking myocardium gets
brighter (a false scar). On each slice, with the myocardium mask M (inside the ROI):
- bright = pixels of M at or above the original's 75th percentile within M (a proxy for scar),
  dark = pixels of M below the original's median within M (a proxy for remote myocardium);
  both sets are fixed from the *original* and measured again, unchanged, on the output;
- proxy contrast = (mean bright − mean dark) / SD dark, before and after (CNR(bright, dark));
- dark change = (mean dark after − mean dark before) / mean dark before;
- spread = mean SD of the k samples over the dark set.
Intensities are the paper's per-slice [0, 255] scale of the original (volume_to_slices), the same scale
applied to the output. A slice is flagged when its proxy contrast drops or its dark myocardium brightens
by more than 3 %. Slices with fewer than MIN_PIXELS myocardium pixels are listed as not assessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

MAX_DARK_BRIGHTENING = 0.03
MIN_PIXELS = 20


@dataclass
class SafetyReport:
    verdict: str  # "ok" | "caution" | "not assessed"
    summary: str
    flagged_slices: list = field(default_factory=list)  # 1-based slice numbers along the stack
    slices: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "summary": self.summary, "flagged_slices": self.flagged_slices,
                "max_dark_brightening": MAX_DARK_BRIGHTENING, "slices": self.slices}


def assess_enhancement(image: sitk.Image, enhanced: sitk.Image, std: "sitk.Image | None", myocardium: np.ndarray) -> SafetyReport:
    """Safety report of `enhanced` (and the SD over k, optional) against `image`; myocardium: boolean (z, y, x)."""
    from ..geometry import to_stack_scale, volume_to_slices

    stack = volume_to_slices(image)
    before = stack.slices.astype(np.float64)
    after = to_stack_scale(stack, enhanced)
    spread = to_stack_scale(stack, std, shift=False) if std is not None else None
    masks = np.transpose(np.asarray(myocardium, bool), stack.axes)
    rows, flagged = [], []
    for k in range(stack.num_slices):
        row = _slice(k, before[k], after[k], None if spread is None else spread[k], masks[k])
        rows.append(row)
        if row.get("flagged"):
            flagged.append(k + 1)
    assessed = [r for r in rows if r["assessed"]]
    if not assessed:
        return SafetyReport("not assessed", "Safety check: no slice has enough myocardium to assess", [], rows)
    c0 = np.mean([r["contrast_before"] for r in assessed])
    c1 = np.mean([r["contrast_after"] for r in assessed])
    dark = np.mean([r["dark_change"] for r in assessed]) * 100
    numbers = f"myocardial contrast {c0:.2f} → {c1:.2f}, dark myocardium {dark:+.1f} %"
    if flagged:
        summary = (f"Caution: {len(flagged)} of {len(assessed)} slices flagged (slice {', '.join(map(str, flagged))}): "
                   f"do not trust them; {numbers}")
        return SafetyReport("caution", summary, flagged, rows)
    return SafetyReport("ok", f"Safety check passed on {len(assessed)} slices: {numbers}", [], rows)


def _slice(k: int, before: np.ndarray, after: np.ndarray, spread, mask: np.ndarray) -> dict:
    row = {"slice": k + 1, "myocardium_pixels": int(mask.sum()), "assessed": False}
    if mask.sum() < MIN_PIXELS:
        return row
    values = before[mask]
    bright = mask & (before >= np.percentile(values, 75))
    dark = mask & (before < np.median(values))
    if bright.sum() < 2 or dark.sum() < 2:
        return row

    def contrast(img):
        sd = img[dark].std()
        return float((img[bright].mean() - img[dark].mean()) / sd) if sd > 0 else float("nan")

    dark_before = float(before[dark].mean())
    row.update({
        "assessed": True,
        "contrast_before": contrast(before), "contrast_after": contrast(after),
        "dark_mean_before": dark_before, "dark_mean_after": float(after[dark].mean()),
        "dark_change": float((after[dark].mean() - dark_before) / dark_before) if dark_before > 0 else 0.0,
        "dark_spread": None if spread is None else float(spread[dark].mean()),
    })
    reasons = []
    if row["contrast_after"] < row["contrast_before"]:
        reasons.append("myocardial contrast fell")
    if row["dark_change"] > MAX_DARK_BRIGHTENING:
        reasons.append(f"dark myocardium brightened by {row['dark_change'] * 100:.1f} %")
    row["flagged"] = bool(reasons)
    row["reasons"] = reasons
    return row
