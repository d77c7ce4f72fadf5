"""Is a heart mask plausibly a left ventricle? Checks of size, shape, position and slice-to-slice
agreement, measured in millimetres on the input's grid, with plain-language warnings.

    report = assess(roi, labels)       # labels (1 blood, 2 myocardium) optional
    report.plausible, report.warnings, report.to_dict()

The limits are loose on purpose (an LV is 45–90 mm across, FACTS: real MyoPS 52–83 mm): a normal heart
never trips them; a mask on a bright blob at the image edge, a few voxels in a corner, or slices that
disagree about where the heart is do. A warning does not change the mask: the reader decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..geometry import slice_axes

MIN_DIAMETER_MM = 25.0  # the largest slice of any real LV is wider
MAX_DIAMETER_MM = 140.0
MIN_VOLUME_ML = 3.0
MIN_ASPECT = 0.35  # minor / major axis of the slice's moment ellipse
MIN_FILL = 0.5  # area / area of that ellipse: low for fragments and crescents
MAX_CENTRE_OFFSET = 0.6  # × the half-diagonal of the field of view
MAX_JUMP_MM = 25.0  # centroid shift between neighbouring slices (or half the diameter if larger)


@dataclass
class Report:
    plausible: bool
    warnings: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    slices: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"plausible": self.plausible, "warnings": list(self.warnings), **self.metrics, "slices": self.slices}


def assess(roi: sitk.Image, labels: "sitk.Image | None" = None) -> Report:
    """Plausibility of a heart segmentation (the undilated labels' union when labels are given)."""
    mask = (sitk.GetArrayFromImage(labels) > 0) if labels is not None else (sitk.GetArrayFromImage(roi) > 0)
    axes = slice_axes(roi)
    spacing = np.array(roi.GetSpacing()[::-1])  # numpy order
    stacked = np.transpose(mask, axes)
    classes = np.transpose(sitk.GetArrayFromImage(labels), axes) if labels is not None else None
    row_mm, col_mm = spacing[axes[1]], spacing[axes[2]]
    n, h, w = stacked.shape
    voxel_ml = float(np.prod(spacing)) / 1000.0
    warnings: list[str] = []
    rows = []
    for k in range(n):
        rows.append(_slice_metrics(stacked[k], row_mm, col_mm, None if classes is None else classes[k]))
    present = [r for r in rows if r["area_mm2"] > 0]
    metrics = {"voxels": int(mask.sum()), "volume_ml": round(float(mask.sum()) * voxel_ml, 2), "slices_total": n,
               "slices_with_heart": len(present)}
    if not present:
        return Report(False, ["no heart found: the mask is empty"], metrics, rows)
    diam = max(r["diameter_mm"] for r in present)
    half_diag = 0.5 * float(np.hypot(h * row_mm, w * col_mm))
    centre = np.array([(h - 1) / 2 * row_mm, (w - 1) / 2 * col_mm])
    offsets = [float(np.hypot(*(np.array(r["centroid_mm"]) - centre))) for r in present]
    metrics.update({"max_diameter_mm": round(diam, 1), "max_offset_from_centre_mm": round(max(offsets), 1),
                    "median_aspect": round(float(np.median([r["aspect"] for r in present])), 3),
                    "median_fill": round(float(np.median([r["fill"] for r in present])), 3)})
    if diam < MIN_DIAMETER_MM:
        warnings.append(f"the largest heart slice is only {diam:.0f} mm across (a left ventricle is 45–90 mm)")
    if diam > MAX_DIAMETER_MM:
        warnings.append(f"the heart mask is {diam:.0f} mm across, wider than any left ventricle")
    if metrics["volume_ml"] < MIN_VOLUME_ML:
        warnings.append(f"the heart mask holds only {metrics['volume_ml']:.1f} ml")
    if max(offsets) > MAX_CENTRE_OFFSET * half_diag:
        warnings.append(f"the mask lies {max(offsets):.0f} mm from the image centre, near the edge of the field of view")
    if any(r["touches_edge"] for r in present):
        warnings.append("the mask touches the edge of the image")
    if metrics["median_aspect"] < MIN_ASPECT or metrics["median_fill"] < MIN_FILL:
        warnings.append("the mask's slices are not round like a left ventricle (elongated or fragmented)")
    if n >= 6 and len(present) < n / 3:
        warnings.append(f"the heart was found in only {len(present)} of {n} slices")
    index = [k for k, r in enumerate(rows) if r["area_mm2"] > 0]
    jumps = []
    for a, b in zip(index, index[1:]):
        if b == a + 1:
            jump = float(np.hypot(*(np.array(rows[a]["centroid_mm"]) - np.array(rows[b]["centroid_mm"]))))
            jumps.append(jump)
            limit = max(MAX_JUMP_MM, 0.5 * max(rows[a]["diameter_mm"], rows[b]["diameter_mm"]))
            if jump > limit:
                warnings.append(f"slices {a + 1} and {b + 1} place the heart {jump:.0f} mm apart")
    metrics["max_jump_mm"] = round(max(jumps), 1) if jumps else 0.0
    if classes is not None:
        myo = int((classes == 2).sum())
        metrics["myocardium_fraction"] = round(myo / max(1, int((classes > 0).sum())), 3)
        if myo == 0:
            warnings.append("no myocardium found around the blood pool")
    return Report(not warnings, warnings, metrics, rows)


def _slice_metrics(mask: np.ndarray, row_mm: float, col_mm: float, classes: "np.ndarray | None") -> dict:
    pts = np.argwhere(mask)
    area = float(len(pts)) * row_mm * col_mm
    if not len(pts):
        return {"area_mm2": 0.0, "diameter_mm": 0.0, "centroid_mm": [0.0, 0.0], "aspect": 0.0, "fill": 0.0, "touches_edge": False}
    mm = pts * np.array([row_mm, col_mm])
    centroid = mm.mean(axis=0)
    cov = np.cov(mm.T) if len(pts) > 2 else np.eye(2) * (row_mm * col_mm) / 12
    eig = np.clip(np.linalg.eigvalsh(cov), 1e-9, None)
    # an ellipse of uniform density has variance a²/4 along each semi-axis a
    ellipse_area = np.pi * 4 * np.sqrt(eig[0] * eig[1])
    edge = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    return {"area_mm2": round(area, 1), "diameter_mm": round(float(2 * np.sqrt(area / np.pi)), 1),
            "centroid_mm": [round(float(c), 1) for c in centroid], "aspect": round(float(np.sqrt(eig[0] / eig[1])), 3),
            "fill": round(float(min(1.0, area / ellipse_area)), 3), "touches_edge": edge}
