"""The main job end to end, on a synthetic case: phantom → heart ROI → enhanced scar → volumes, figure, CNR table.

This is what `Testing/run-demo.sh` (and `scarenhance demo`) runs; it is also the smoke test of the
whole engine, so it uses the same public functions the Slicer module and the CLI use.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from . import labels as L
from .errors import InputError
from .evaluation.metrics import dice
from .progress import ProgressFn, no_progress, scaled


@dataclass
class DemoResult:
    out_dir: Path
    files: dict = field(default_factory=dict)  # name → path
    metrics: dict = field(default_factory=dict)  # numbers printed in the table
    timings: dict = field(default_factory=dict)  # stage → seconds


def run_demo(
    out_dir: "str | Path",
    seed: int = 7,
    lam: int = 250,
    k: int = 5,
    steps: "int | None" = 10,
    dilate_mm: float = 0.0,
    device: str = "auto",
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
) -> DemoResult:
    """Run the demo into out_dir; returns the file paths, the CNR table and the stage timings."""
    from .io import write_image
    from .phantom import generate_case

    out = Path(out_dir)
    names = {"image": "lge.nii.gz", "labels": "labels.nii.gz", "roi": "heart_roi.nii.gz",
             "enhanced": "lge_enhanced.nii.gz", "uncertainty": "lge_uncertainty.nii.gz",
             "figure": "demo.png", "metrics": "metrics.json"}
    existing = [n for n in names.values() if (out / n).exists()]
    if existing and not overwrite:
        raise InputError(f"output files exist already ({', '.join(existing)}); pass --overwrite or choose another folder", out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out, {k_: out / v for k_, v in names.items()})

    tic = time.perf_counter()
    progress(0.0, "making a synthetic LGE case")
    case = generate_case(seed)
    canonical = _canonical(case.labels)
    write_image(case.image, result.files["image"], overwrite=True)
    write_image(canonical, result.files["labels"], overwrite=True)
    result.timings["phantom"] = time.perf_counter() - tic

    tic = time.perf_counter()
    from .segmentation import segment_heart

    roi = segment_heart(case.image, dilate_mm=dilate_mm, device=device, progress=scaled(progress, 0.02, 0.15))
    write_image(roi, result.files["roi"], overwrite=True)
    result.timings["segment"] = time.perf_counter() - tic
    truth = L.heart_mask(sitk.GetArrayFromImage(canonical))
    pred = sitk.GetArrayFromImage(roi).astype(bool)
    result.metrics["heart_dice"] = dice(pred, truth)

    tic = time.perf_counter()
    from .diffusion import enhance_scar

    mean, std = enhance_scar(case.image, roi, lam=lam, k=k, steps=steps, seed=seed, device=device,
                             progress=scaled(progress, 0.15, 0.95))
    write_image(mean, result.files["enhanced"], overwrite=True)
    write_image(std, result.files["uncertainty"], overwrite=True)
    result.timings["enhance"] = time.perf_counter() - tic

    result.metrics.update(_cnr_table(case.image, mean, canonical))
    result.metrics.update(lam=lam, k=k, steps=steps, seed=seed)
    progress(0.97, "drawing the figure")
    _figure(case.image, canonical, roi, mean, std, result.files["figure"])
    result.files["metrics"].write_text(json.dumps({"metrics": result.metrics, "timings_s": result.timings}, indent=2), encoding="utf-8")
    progress(1.0, "done")
    return result


def _canonical(emidec_labels: sitk.Image) -> sitk.Image:
    """EMIDEC labels (1 cavity, 2 myocardium, 3 infarct, 4 no-reflow) → canonical classes, same grid."""
    from .datasets import EMIDEC_LABELS, map_labels

    canonical = sitk.GetImageFromArray(map_labels(sitk.GetArrayFromImage(emidec_labels), EMIDEC_LABELS))
    canonical.CopyInformation(emidec_labels)
    return canonical


def _cnr_table(original: sitk.Image, enhanced: sitk.Image, canonical: sitk.Image) -> dict:
    """CNR(scar,myo) and CNR(scar,blood) before and after, averaged over slices with scar; the enhanced
    volume is put on the original's per-slice [0, 255] scale so that both are compared on one scale."""
    from .evaluation.metrics import tissue_cnrs
    from .geometry import labels_to_slices, to_stack_scale, volume_to_slices

    stack = volume_to_slices(original)
    lab = labels_to_slices(canonical, stack)
    after = to_stack_scale(stack, enhanced)
    rows: dict[str, list] = {f"{name}_{when}": [] for name in ("cnr_scar_myo", "cnr_scar_blood") for when in ("before", "after")}
    for i in range(lab.shape[0]):
        if min((lab[i] == c).sum() for c in (L.SCAR, L.MYOCARDIUM, L.BLOOD)) < 5:
            continue
        for when, img in (("before", stack.slices[i]), ("after", after[i])):
            for name, value in tissue_cnrs(img, lab[i]).items():
                rows[f"{name}_{when}"].append(value)
    table = {name: float(np.nanmean(v)) if v else float("nan") for name, v in rows.items()}
    table["slices_with_scar"] = len(rows["cnr_scar_myo_before"])
    return table


def _figure(image, canonical, roi, mean, std, path: Path) -> None:
    """Original / ROI / enhanced / uncertainty for up to three slices with the most scar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .geometry import labels_to_slices, volume_to_slices

    stack = volume_to_slices(image)
    lab = labels_to_slices(canonical, stack)
    roi_s = labels_to_slices(roi, stack)
    mean_s = np.transpose(sitk.GetArrayFromImage(mean), stack.axes)
    std_s = np.transpose(sitk.GetArrayFromImage(std), stack.axes)
    orig_s = np.transpose(sitk.GetArrayFromImage(image), stack.axes)
    scar_px = (lab == L.SCAR).sum(axis=(1, 2))
    order = [i for i in np.argsort(-scar_px) if roi_s[i].any()][:3] or [stack.num_slices // 2]
    fig, axes = plt.subplots(len(order), 4, figsize=(13, 3.4 * len(order)), squeeze=False)
    for row, i in enumerate(sorted(order)):
        ys, xs = np.nonzero(roi_s[i]) if roi_s[i].any() else np.nonzero(np.ones_like(roi_s[i]))
        pad = 25
        win = (slice(max(ys.min() - pad, 0), ys.max() + pad), slice(max(xs.min() - pad, 0), xs.max() + pad))
        vmin, vmax = np.percentile(orig_s[i][win], [1, 99.5])
        panels = [("original", orig_s[i]), ("heart ROI (green) + scar label (red)", orig_s[i]),
                  ("enhanced (what the k samples agree on)", mean_s[i]), ("uncertainty (SD over k)", std_s[i])]
        for col, (title, data) in enumerate(panels):
            ax = axes[row, col]
            if col == 3:
                im = ax.imshow(data[win], cmap="magma")
                fig.colorbar(im, ax=ax, fraction=0.046)
            else:
                ax.imshow(data[win], cmap="gray", vmin=vmin, vmax=vmax)
            if col == 1:
                ax.contour(roi_s[i][win], levels=[0.5], colors="lime", linewidths=1)
                if (lab[i] == L.SCAR).any():
                    ax.contour((lab[i] == L.SCAR)[win], levels=[0.5], colors="red", linewidths=1)
            ax.set_title(f"{title}\nslice {i}" if row == 0 else f"slice {i}", fontsize=9)
            ax.axis("off")
    fig.suptitle("ScarEnhance demo: localized diffusion scar enhancement (synthetic LGE)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
