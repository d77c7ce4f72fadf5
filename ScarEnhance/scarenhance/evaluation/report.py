"""The evaluation report (paper §3.3–3.6): run both models on a labelled data set and write every number.

    report = evaluate_dataset(data_dir, models, report_dir, EvalSettings(lam=250, k=5))

For each case: the [0, 255] slice stack of the original (geometry.volume_to_slices, native pixels), the
gamma-corrected target (targets.make_targets with the data set's mean blood intensity), the heart ROI
from the segmentation model (Dice against the ground-truth heart), and the diffusion output (mean of k
samples; also one single sample and, with a model trained with m = 1, whole-image noise: Table 2).
The output volumes are put on the original's per-slice [0, 255] scale, so original, target and output
are compared on one scale.

Per slice with scar: CNR(scar, myo) and CNR(scar, blood) of original, target and output; SSIM, PSNR
(and LPIPS when weights are given) of output and original against the target, on the crop around
the ground-truth heart. Per scar-free slice: the change of the remote-myocardium and blood-pool means
(false enhancement). Then mean ± SD, the Wilcoxon signed-rank test of output vs original, the λ sweep
of Fig. 2 on chosen cases, and report.json / report.md / figures/*.png in the report folder.
"""

from __future__ import annotations

import datetime
import json
import math
import platform
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..errors import InputError
from ..geometry import to_stack_scale
from ..labels import MYOCARDIUM, SCAR, heart_mask
from ..progress import ProgressFn, check_cancel, no_progress, scaled
from . import metrics as M
from .paper import LAMBDA_SWEEP as DEFAULT_SWEEP
from .stats import summarize, wilcoxon

VARIANTS = ("original", "target", "output", "single_sample", "whole_image")
IMAGE_METRICS = ("ssim_pct", "psnr_db", "lpips", "cnr_scar_myo", "cnr_scar_blood")
MIN_SCAR_PIXELS = 5  # slices with fewer labelled scar pixels count as scar-free (a CNR of 3 pixels is noise)
FIGURE_MARGIN = 8  # pixels around the heart box in the figure panels


class Models(Protocol):
    """What the report needs from the models (tests pass stand-ins; `ModelPair` wraps model folders)."""

    def segment(self, image: sitk.Image, progress: ProgressFn = no_progress) -> sitk.Image:
        """Heart ROI, uint8 0/1 in the image's geometry."""

    def enhance(self, image: sitk.Image, roi: sitk.Image, *, lam: int, k: int, seed: int,
                whole_image: bool = False, progress: ProgressFn = no_progress) -> tuple[sitk.Image, sitk.Image]:
        """(mean, std) in the image's geometry and intensity scale. whole_image: the m = 1 model."""

    def describe(self) -> dict:
        """Model folders, versions and checksums recorded in report.json."""

    @property
    def has_whole_image_model(self) -> bool: ...


@dataclass
class EvalSettings:
    lam: int = 250
    k: int = 5
    steps: Optional[int] = None  # None: the paper's ancestral chain of λ steps; N: N-step DDIM (fast)
    seed: int = 0
    single_sample: bool = True  # Table 2 "mean" ablation: also run k = 1
    lam_sweep: tuple[int, ...] = DEFAULT_SWEEP  # empty: no sweep
    sweep_cases: Optional[list[str]] = None  # None: the cases with the largest and smallest scar burden
    n_sweep_cases: int = 2
    sweep_k: Optional[int] = None  # samples per λ in the sweep (None: k); fewer make a long CPU sweep affordable
    figure_cases: int = 3
    lpips_weights: Optional[str] = None
    cases: Optional[list[str]] = None  # evaluate only these cases (e.g. a validation split)
    max_cases: Optional[int] = None
    save_volumes: bool = True  # cases/<name>/{enhanced,uncertainty,roi}.nii.gz for viewing in Slicer
    layout: str = "auto"


@dataclass
class Panel:
    """What the case figure shows of one case: its slice with the most scar, cropped around the heart."""

    case: str
    index: int
    original: np.ndarray
    target: np.ndarray
    output: np.ndarray
    std: np.ndarray
    labels: np.ndarray
    roi: np.ndarray
    cnr: dict = field(default_factory=dict)  # variant → CNR(scar, myo)
    note: str = ""  # why this panel was picked, shown beside it


def evaluate_dataset(
    data_dir: "str | Path",
    models: Models,
    report_dir: "str | Path",
    settings: EvalSettings = EvalSettings(),
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
    cancel: Optional[threading.Event] = None,
    log=print,
) -> dict:
    """Evaluate `models` on the labelled cases in `data_dir`; write the report folder; return report.json's dict."""
    from ..datasets import list_cases, load_case
    from .lpips import load_lpips

    report_dir = Path(report_dir)
    if (report_dir / "report.json").exists() and not overwrite:
        raise InputError("a report exists already in this folder; pass --overwrite or choose another folder", report_dir)
    started = time.perf_counter()
    names = list_cases(data_dir, settings.layout)
    if settings.cases is not None:
        missing = sorted(set(settings.cases) - set(names))
        if missing:
            raise InputError(f"cases not in the data set: {', '.join(missing)}", data_dir)
        names = [n for n in names if n in set(settings.cases)]
    if settings.max_cases:
        names = names[: settings.max_cases]
    if not names:
        raise InputError("no cases found", data_dir)
    unknown = sorted(set(settings.sweep_cases or []) - set(names))
    if unknown:
        raise InputError(f"λ-sweep cases not in the data set: {', '.join(unknown)}", data_dir)
    lpips_metric, lpips_status = load_lpips(settings.lpips_weights)
    log(f"LPIPS {lpips_status}")
    report_dir.mkdir(parents=True, exist_ok=True)

    progress(0.0, "reading the cases for the dataset blood mean of the gamma targets")

    def load(name):
        return load_case(data_dir, name, settings.layout)

    config, blood_mean = _target_settings(load(n) for n in names)  # one case in memory at a time

    records, panels, burdens, timings = [], [], {}, []
    for i, name in enumerate(names):
        check_cancel(cancel)
        case = load(name)
        step = scaled(progress, 0.02 + 0.78 * i / len(names), 0.02 + 0.78 * (i + 1) / len(names))
        step(0.0, f"case {i + 1}/{len(names)}: {name}")
        record, panel, timing = _evaluate_case(case, models, settings, config, blood_mean, lpips_metric,
                                               report_dir if settings.save_volumes else None, seed=case_seed(settings.seed, name),
                                               progress=lambda f, m, j=i: step(f, f"case {j + 1}/{len(names)} {name}: {m}"))
        records.append(record)
        timings.append(timing)
        burdens[case.name] = record["scar_burden_pct"]
        if panel is not None:
            panels.append(panel)
        log(_case_line(record, timing))

    sweep = {}
    sweep_names = settings.sweep_cases or _pick_sweep_cases(burdens, settings.n_sweep_cases)
    if settings.lam_sweep and sweep_names:
        sweep = _lambda_sweep([load(n) for n in sweep_names], models, settings, config, blood_mean,
                              lambda f, m: progress(0.8 + 0.17 * f, m), cancel, log)

    progress(0.97, "writing the report")
    report = {
        "scarenhance_version": __version__,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "data": str(Path(data_dir).resolve()),
        "settings": {**asdict(settings), "lam_sweep": list(settings.lam_sweep)},
        "models": models.describe(),
        "lpips": lpips_status,
        "targets": {"gamma_config": _config_dict(config), "blood_mean": blood_mean},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "summary": summarize_report(records),
        "lambda_sweep": sweep,
        "cases": records,
        "timing_s": {"total": round(time.perf_counter() - started, 2), "cases": timings},
    }
    report = _json_safe(report)
    from .figures import write_figures
    from .tables import report_markdown

    figures = write_figures(report, _choose_panels(panels, settings.figure_cases), report_dir / "figures",
                            highlight=_largest_gain(panels))
    report["figures"] = [str(p.relative_to(report_dir)) for p in figures]
    _write_text(report_dir / "report.md", report_markdown(report))
    _write_text(report_dir / "report.json", json.dumps(report, indent=1))  # last: its presence means "complete"
    progress(1.0, f"report written to {report_dir}")
    return report


# ---- one case --------------------------------------------------------------------------------------


def slice_record(index: int, labels: np.ndarray, images: dict[str, np.ndarray], lpips=None) -> dict:
    """Every number of one slice with a ground-truth heart. images: variant → (H, W) [0, 255]; must hold
    "original" and "target"; metrics of structure are computed against "target" on the heart crop."""
    target = images["target"]
    rows, cols = M.crop_box(heart_mask(labels))
    scar_pixels = int((labels == SCAR).sum())
    record = {"index": int(index), "scar_pixels": scar_pixels, "has_scar": scar_pixels >= MIN_SCAR_PIXELS,
              "crop": [rows.start, rows.stop, cols.start, cols.stop]}
    for variant, image in images.items():
        values = M.tissue_cnrs(image, labels) if record["has_scar"] else {"cnr_scar_myo": None, "cnr_scar_blood": None}
        values.update({f"mean_{k}": v for k, v in M.region_means(image, labels).items()})
        if variant != "target":
            values["ssim_pct"] = 100.0 * M.ssim(image[rows, cols], target[rows, cols])
            values["psnr_db"] = M.psnr(image[rows, cols], target[rows, cols])
            values["lpips"] = lpips.distance(image[rows, cols], target[rows, cols]) if lpips is not None else None
        record[variant] = values
    return record


def case_seed(seed: int, name: str) -> int:
    """The noise seed of one case (31 bits, as `enhance --seed` takes): SeedSequence([seed, CRC-32 of the
    name]), so cases draw streams of their own (seed + index made case i + 1 of seed S case i of S + 1),
    and a case's output does not depend on which other cases are evaluated."""
    word = zlib.crc32(name.encode("utf-8"))
    return int(np.random.SeedSequence([int(seed), word]).generate_state(1, dtype=np.uint32)[0] >> 1)


def _evaluate_case(case, models, settings, config, blood_mean, lpips, out_dir, seed, progress=no_progress):
    from ..geometry import labels_to_slices, volume_to_slices
    from ..targets import make_targets

    stack = volume_to_slices(case.image)
    labels = labels_to_slices(case.labels, stack)
    target = make_targets(stack.slices, labels, config, blood_mean)
    timing = {"case": case.name}

    # progress bands in proportion to the network calls: segmentation ~0, then k, 1 and k samples
    single = settings.single_sample and settings.k > 1
    costs = [settings.k, 1 if single else 0, settings.k if models.has_whole_image_model else 0]
    edges = 0.05 + 0.95 * np.cumsum([0] + costs) / sum(costs)

    tic = time.perf_counter()
    roi_image = models.segment(case.image, progress=scaled(progress, 0.0, 0.05))
    timing["segment"] = round(time.perf_counter() - tic, 3)
    roi = labels_to_slices(roi_image, stack).astype(bool)
    truth = heart_mask(labels)

    tic = time.perf_counter()
    mean, std = models.enhance(case.image, roi_image, lam=settings.lam, k=settings.k, seed=seed,
                               progress=scaled(progress, edges[0], edges[1]))
    timing["enhance"] = round(time.perf_counter() - tic, 3)
    variants = {"output": to_stack_scale(stack, mean)}
    if single:
        one, _ = models.enhance(case.image, roi_image, lam=settings.lam, k=1, seed=seed,
                                progress=scaled(progress, edges[1], edges[2]))
        variants["single_sample"] = to_stack_scale(stack, one)
    if models.has_whole_image_model:
        whole, _ = models.enhance(case.image, roi_image, lam=settings.lam, k=settings.k, seed=seed, whole_image=True,
                                  progress=scaled(progress, edges[2], edges[3]))
        variants["whole_image"] = to_stack_scale(stack, whole)
    spread = to_stack_scale(stack, std, shift=False)

    slices = []
    for i in range(stack.num_slices):
        if not truth[i].any():
            continue
        images = {"original": stack.slices[i], "target": target[i], **{k: v[i] for k, v in variants.items()}}
        record = slice_record(i, labels[i], images, lpips)
        record["dice_heart"] = M.dice(roi[i], truth[i])
        slices.append(record)

    scar, myo = int((labels == SCAR).sum()), int((labels == MYOCARDIUM).sum())
    record = {
        "name": case.name,
        "image": str(case.image_path),
        "labels": str(case.label_path),
        "num_slices": stack.num_slices,
        "scar_burden_pct": 100.0 * scar / max(scar + myo, 1),
        "dice_heart": M.dice(roi, truth),
        "roi_pixels": int(roi.sum()),
        "seed": seed,  # `scarenhance enhance --seed` with it reproduces this case's output
        "slices": slices,
    }
    if out_dir is not None:
        from ..io import write_image

        folder = out_dir / "cases" / case.name
        write_image(mean, folder / "enhanced.nii.gz", overwrite=True)
        write_image(std, folder / "uncertainty.nii.gz", overwrite=True)
        write_image(roi_image, folder / "roi.nii.gz", overwrite=True)
    panel = _panel(case.name, stack.slices, target, variants["output"], spread, labels, roi, slices)
    return record, panel, timing


def _panel(name, original, target, output, spread, labels, roi, slices) -> Optional[Panel]:
    """The case's slice with the most scar, cropped around its heart with a margin (None without scar)."""
    with_scar = [s for s in slices if s["has_scar"]]
    if not with_scar:
        return None
    best = max(with_scar, key=lambda s: s["scar_pixels"])
    i = best["index"]
    r0, r1, c0, c1 = best["crop"]
    h, w = labels.shape[1:]
    side = max(r1 - r0, c1 - c0) + 2 * FIGURE_MARGIN  # square panels read best side by side
    rc, cc = (r0 + r1) // 2, (c0 + c1) // 2
    rs = slice(max(0, min(rc - side // 2, h - side)), min(h, max(rc - side // 2, 0) + side))
    cs = slice(max(0, min(cc - side // 2, w - side)), min(w, max(cc - side // 2, 0) + side))
    return Panel(name, i, original[i][rs, cs], target[i][rs, cs], output[i][rs, cs], spread[i][rs, cs],
                 labels[i][rs, cs], roi[i][rs, cs],
                 {v: _finite_or_none(best[v]["cnr_scar_myo"]) for v in ("original", "target", "output")})


def _choose_panels(panels: list[Panel], n: int) -> list[Panel]:
    """n panels spread over the cases (first, last and evenly between)."""
    if len(panels) <= n:
        return panels
    picks = np.unique(np.round(np.linspace(0, len(panels) - 1, n)).astype(int))
    return [panels[i] for i in picks]


def _largest_gain(panels: list[Panel]) -> Optional[Panel]:
    """The panel whose CNR(scar, myo) the model raised most (the overview figure shows what the model does)."""
    scored = [(p.cnr["output"] - p.cnr["original"], p) for p in panels
              if p.cnr.get("output") is not None and p.cnr.get("original") is not None]
    if not scored:
        return panels[0] if panels else None
    gain, best = max(scored, key=lambda item: item[0])
    best.note = f"largest CNR gain of the {len(panels)} cases ({gain:+.2f})"
    return best


# ---- λ sweep (Fig. 2) ------------------------------------------------------------------------------


def _pick_sweep_cases(burdens: dict[str, float], n: int) -> list[str]:
    """Cases spanning the scar burden (the paper picked 12 % and 3 %): largest first, then smallest, …"""
    with_scar = sorted((b, name) for name, b in burdens.items() if b > 0)
    if not with_scar or n <= 0:
        return []
    picks = np.unique(np.round(np.linspace(len(with_scar) - 1, 0, min(n, len(with_scar)))).astype(int))
    return [with_scar[i][1] for i in sorted(picks, reverse=True)]


def _lambda_sweep(cases, models, settings, config, blood_mean, progress, cancel, log) -> dict:
    """CNR(scar, myo) and CNR(scar, blood), mean over a case's scar slices, for each λ of the sweep."""
    from ..geometry import labels_to_slices, volume_to_slices
    from ..targets import make_targets

    lams = sorted(set(int(v) for v in settings.lam_sweep))
    k = settings.sweep_k or settings.k
    out = {"lams": lams, "k": k, "steps": settings.steps, "cases": []}
    total = len(cases) * len(lams)
    for c, case in enumerate(cases):
        stack = volume_to_slices(case.image)
        labels = labels_to_slices(case.labels, stack)
        target = make_targets(stack.slices, labels, config, blood_mean)
        scar_slices = [i for i in range(stack.num_slices) if (labels[i] == SCAR).sum() >= MIN_SCAR_PIXELS]
        roi = models.segment(case.image)

        def case_cnr(images):
            values = [M.tissue_cnrs(images[i], labels[i]) for i in scar_slices]
            return {key: _nanmean([v[key] for v in values]) for key in ("cnr_scar_myo", "cnr_scar_blood")}

        entry = {"name": case.name, "scar_burden_pct": 100.0 * (labels == SCAR).sum() / max(np.isin(labels, (SCAR, MYOCARDIUM)).sum(), 1),
                 "original": case_cnr(stack.slices), "target": case_cnr(target),
                 "cnr_scar_myo": [], "cnr_scar_blood": [], "seconds": []}
        for j, lam in enumerate(lams):
            check_cancel(cancel)
            progress((c * len(lams) + j) / total, f"λ sweep: {case.name}, λ = {lam}")
            tic = time.perf_counter()
            mean, _ = models.enhance(case.image, roi, lam=lam, k=k, seed=case_seed(settings.seed, case.name),
                                     progress=lambda f, m, j=j: progress((c * len(lams) + j + f) / total, f"λ sweep: {case.name}, λ = {lam}: {m}"))
            values = case_cnr(to_stack_scale(stack, mean))
            entry["cnr_scar_myo"].append(values["cnr_scar_myo"])
            entry["cnr_scar_blood"].append(values["cnr_scar_blood"])
            entry["seconds"].append(round(time.perf_counter() - tic, 3))
        log(f"λ sweep {case.name}: " + ", ".join(f"λ={lam}: {v:.2f}" for lam, v in zip(lams, entry["cnr_scar_myo"])))
        out["cases"].append(entry)
    return out


# ---- summaries -------------------------------------------------------------------------------------


def summarize_report(cases: list[dict]) -> dict:
    """Table 1, Table 2, Wilcoxon tests, heart Dice and false enhancement from the per-slice records."""
    slices = [s for case in cases for s in case["slices"]]
    scar = [s for s in slices if s["has_scar"]]
    free = [s for s in slices if not s["has_scar"]]

    def column(rows, variant, metric):
        return [r[variant].get(metric) if variant in r else None for r in rows]

    def table(rows, variant):
        if not any(variant in r for r in rows):
            return None
        return {m: summarize(column(rows, variant, m)) for m in IMAGE_METRICS}

    table1 = {v: table(scar, v) for v in ("original", "target", "output")}
    table2 = {"whole_image": table(scar, "whole_image"), "local_single": table(scar, "single_sample"), "local_mean": table1["output"]}
    tests = {
        "output_vs_original": {m: wilcoxon(column(scar, "output", m), column(scar, "original", m)) for m in IMAGE_METRICS},
        "target_vs_original": {m: wilcoxon(column(scar, "target", m), column(scar, "original", m)) for m in ("cnr_scar_myo", "cnr_scar_blood")},
    }
    for name, variant in (("mean_vs_single_sample", "single_sample"), ("local_vs_whole_image", "whole_image")):
        if any(variant in r for r in scar):
            tests[name] = {m: wilcoxon(column(scar, "output", m), column(scar, variant, m)) for m in IMAGE_METRICS}

    def change(rows, variant, region):
        return [r[variant][f"mean_{region}"] - r["original"][f"mean_{region}"] for r in rows]

    false_enhancement = {"n_slices": len(free)}
    for region in ("myocardium", "blood"):
        delta = change(free, "output", region)
        false_enhancement[region] = {
            "output_minus_original": summarize(delta),
            "abs_change": summarize([abs(d) for d in delta if d is not None and math.isfinite(d)]),
            "percent_of_original": summarize([100.0 * d / r["original"][f"mean_{region}"] for d, r in zip(delta, free)
                                              if r["original"][f"mean_{region}"]]),
            "target_minus_original": summarize(change(free, "target", region)),
        }
    false_enhancement["remote_myocardium_on_scar_slices"] = summarize(change(scar, "output", "myocardium"))

    return {
        "n_cases": len(cases),
        "n_slices": len(slices),
        "n_slices_with_scar": len(scar),
        "n_slices_without_scar": len(free),
        "cases_with_empty_roi": [c["name"] for c in cases if c["roi_pixels"] == 0],  # nothing was enhanced there
        "table1": table1,
        "table2": table2,
        "wilcoxon": tests,
        "heart_dice": {"per_slice": summarize([s["dice_heart"] for s in slices]),
                       "per_case": summarize([c["dice_heart"] for c in cases])},
        "false_enhancement": false_enhancement,
        "structure_scar_free": {v: {m: summarize(column(free, v, m)) for m in ("ssim_pct", "psnr_db", "lpips")}
                                for v in ("original", "output")},
    }


# ---- helpers ---------------------------------------------------------------------------------------


def _target_settings(cases) -> tuple[object, float]:
    """The authors' gamma configuration and the evaluated data set's mean blood-pool intensity (paper §2.1)."""
    from ..targets import GammaConfig, dataset_blood_mean

    return GammaConfig(), float(dataset_blood_mean(cases))


def _config_dict(config) -> dict:
    try:
        return asdict(config)
    except TypeError:
        return {"repr": repr(config)}


def _finite_or_none(value) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


def _nanmean(values) -> Optional[float]:
    arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else None


def _case_line(record: dict, timing: dict) -> str:
    scar = [s for s in record["slices"] if s["has_scar"]]
    parts = [f"{record['name']}: {len(record['slices'])} heart slices ({len(scar)} with scar)",
             f"Dice {record['dice_heart']:.3f}"]
    if scar:
        before = _nanmean([s["original"]["cnr_scar_myo"] for s in scar])
        after = _nanmean([s["output"]["cnr_scar_myo"] for s in scar])
        if before is not None and after is not None:
            parts.append(f"CNR(scar,myo) {before:.2f} → {after:.2f}")
    parts.append(f"{timing['segment'] + timing['enhance']:.1f} s")
    return "  ".join(parts)


def _write_text(path: Path, text: str) -> None:
    """Atomic write (temporary file + rename), with the same permissions as the figures beside it."""
    from ..bundle import atomic_write_bytes

    atomic_write_bytes(path, text.encode())


def _json_safe(value):
    """NaN/inf → None, numpy scalars → Python numbers, tuples → lists (report.json is strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value
