"""Enhancement across data families that no shipped model trained on (evaluation/families.py), with the
ground-truth heart ROI, as the held-out evaluation runs it: per family, mean CNR(scar, myo) and
CNR(scar, blood) before → gamma target → after over slices with scar, and where the gain goes (how far the
scar rose against its target's rise, how much noisier the myocardium got); the mean change of the remote
(healthy) myocardium and of the blood pool on slices with and without scar; the share of scar slices
whose CNR(scar, myo) fell; voxels changed outside the ROI; and the safety check's verdicts. The worst
family (lowest CNR(scar, myo) gain) is the headline. A family with random-contrast cases (synth-unseen:
half of them, where scar need not be brighter than the myocardium) also gets a row of its LGE-contrast
cases alone ("… LGE"). Scar slices are also split by whether the scar is brighter than the LV blood pool in the
original ("scar > blood", as in about half of real scans; "scar ≤ blood"): there the network must tell bright
scar from the blood pool, whose target darkens, by where it lies.

    .venv/bin/python benchmarks/enh_families.py [--model DIR|ID] [--cases 6] [--seed 9001] [--lam 250]
        [--k 3] [--steps 10] [--min-window PX] [--families ...] [--threads 2] [--json benchmarks/results/enh_families.json]
    .venv/bin/python benchmarks/enh_families.py --data DIR --cases 12 --json OUT.json   # a labelled dataset instead

--agreement Z: the standard errors each voxel's change is shrunk by (enhance --agreement, diffusion/agreement.py;
default: the engine's, 0 = the paper's plain mean of the k samples).

--min-window: network windows of at least PX a side (besides the model's own floor), to see how much the
surroundings in the window change the result.

--myocardium: what a model with the myocardium input (`train-diffusion --myocardium-input`) is given:
none (unknown, the ROI alone: what the held-out evaluation gives), labels (the labelled wall, myocardium and
scar: a reader's corrected segment at its best), or heart-model (the shipped heart model's myocardium class:
an uncorrected Slicer session). Models without that input ignore it.

Intensities are the paper's per-slice [0, 255] scale of the original, the output measured on that same
scale. Tissue means and changes are means over slices. The gain and the remote change also get a 95 %
interval from resampling whole cases (evaluation/stats.py): with a few cases a family's numbers move a
lot from one set of cases to the next. `--from-result FILE` recomputes them for an earlier result.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ScarEnhance"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from repo_paths import add_family_options, apply_threads, repo_relative, write_result  # noqa: E402
from scarenhance import labels as L  # noqa: E402
from scarenhance.diffusion import enhance_scar, load_diffusion_model  # noqa: E402
from scarenhance.diffusion.agreement import DEFAULT_AGREEMENT  # noqa: E402
from scarenhance.diffusion.enhance import training_windows  # noqa: E402
from scarenhance.diffusion.safety import assess_enhancement  # noqa: E402
from scarenhance.evaluation.families import EvalCase, family_cases  # noqa: E402
from scarenhance.evaluation.metrics import tissue_cnrs  # noqa: E402
from scarenhance.evaluation.stats import case_bootstrap_interval  # noqa: E402
from scarenhance.geometry import labels_to_slices, to_stack_scale, volume_to_slices  # noqa: E402
from scarenhance.targets import dataset_blood_mean, make_targets  # noqa: E402


def _label_image(labels: np.ndarray, like: sitk.Image) -> sitk.Image:
    img = sitk.GetImageFromArray(labels.astype(np.uint8))
    img.CopyInformation(like)
    return img


def _change(after: np.ndarray, before: np.ndarray, mask: np.ndarray) -> float:
    b = float(before[mask].mean())
    return float(after[mask].mean() / b - 1.0) if b > 0 else float("nan")


def _summary(rows: list[dict]) -> dict:
    scarred = [r for r in rows if r["has_scar"]]
    clean = [r for r in rows if not r["has_scar"]]

    def m(rs, key):
        values = [r[key] for r in rs if np.isfinite(r.get(key, np.nan))]
        return float(np.mean(values)) if values else float("nan")

    out = {"slices": len(rows), "scar_slices": len(scarred)}
    for key in ("cnr_scar_myo", "cnr_scar_blood"):
        for stage in ("before", "target", "after"):
            out[f"{key}_{stage}"] = m(scarred, f"{key}_{stage}")
    out["cnr_scar_myo_gain"] = out["cnr_scar_myo_after"] / out["cnr_scar_myo_before"] - 1 if scarred else float("nan")
    out["slices_worse"] = int(sum(r["cnr_scar_myo_after"] < r["cnr_scar_myo_before"] for r in scarred))
    out["remote_change_scar_slices"] = m(scarred, "remote_change")
    out["remote_change_scar_free_slices"] = m(clean, "remote_change")
    out["max_remote_change"] = float(max((r["remote_change"] for r in rows), default=float("nan")))
    out["blood_change_scar_slices"] = m(scarred, "blood_change")
    out["blood_change_scar_free_slices"] = m(clean, "blood_change")
    out["scar_rise"], out["scar_rise_target"] = m(scarred, "scar_rise"), m(scarred, "scar_rise_target")
    out["myo_sd_change"] = m(scarred, "myo_sd_change")
    return out


# The summaries whose 95 % case-bootstrap interval is reported: with 4–6 cases a family's numbers move by
# tens of points from one set of cases to the next (README: "How far these numbers move").
INTERVALS = ("cnr_scar_myo_gain", "remote_change_scar_slices", "remote_change_scar_free_slices")


def _by_scar_vs_blood(rows: list[dict]) -> dict:
    """Summaries of the scar slices whose scar is brighter than the LV blood in the original, and of the rest
    (slices without a blood pool count as the rest). Rows of older results without the flag give nothing."""
    scarred = [r for r in rows if r["has_scar"] and "scar_above_blood" in r]
    if not scarred:
        return {}
    return {"scar_above_blood": _summary([r for r in scarred if r["scar_above_blood"]]),
            "scar_not_above_blood": _summary([r for r in scarred if not r["scar_above_blood"]])}


def _intervals(rows: list[dict], seed: int) -> dict:
    def interval(key):
        found = case_bootstrap_interval(rows, lambda rs: _summary(rs)[key], seed=seed)
        return None if found is None else [round(v, 4) for v in found]

    return {f"{key}_ci95": interval(key) for key in INTERVALS}


MYOCARDIUM_SOURCES = ("none", "labels", "heart-model")


def evaluate_family(net, family: str, cases: int, seed: int, lam: int, k: int, steps: int, min_window: int = 0,
                    myocardium: str = "none", agreement: float = DEFAULT_AGREEMENT) -> dict:
    return evaluate_cases(net, family, list(family_cases(family, cases, seed)), seed, lam, k, steps, min_window, myocardium,
                          agreement)


def dataset_cases(root: str, cases: int) -> list[EvalCase]:
    """The first `cases` cases of a labelled dataset folder (any layout datasets.py reads), as EvalCases."""
    from itertools import islice

    from scarenhance.datasets import iter_cases

    return [EvalCase(str(case.name), case.image, sitk.GetArrayFromImage(case.labels))
            for case in islice(iter_cases(root), cases)]


def evaluate_cases(net, family: str, items: list[EvalCase], seed: int, lam: int, k: int, steps: int,
                   min_window: int = 0, myocardium: str = "none", agreement: float = DEFAULT_AGREEMENT) -> dict:
    label_images = [_label_image(c.labels, c.image) for c in items]

    class _Case:  # what dataset_blood_mean reads
        def __init__(self, image, labels):
            self.image, self.labels = image, labels

    blood_mean = dataset_blood_mean([_Case(c.image, lab) for c, lab in zip(items, label_images)])
    rows, outside_changed, verdicts = [], {}, []
    for case, lab_img in zip(items, label_images):
        roi = _label_image(L.heart_mask(case.labels), case.image)
        tic = time.perf_counter()
        mean, std = enhance_scar(case.image, roi, model=net, lam=lam, k=k, steps=steps, seed=seed, device="cpu",
                                 min_window=min_window, myocardium=_given_myocardium(case, myocardium), agreement=agreement)
        seconds = time.perf_counter() - tic
        inside = L.heart_mask(case.labels)
        outside_changed[case.name] = int(np.sum(sitk.GetArrayFromImage(mean)[~inside] != sitk.GetArrayFromImage(case.image)[~inside]))
        verdicts.append(assess_enhancement(case.image, mean, std, case.labels == L.MYOCARDIUM).verdict)
        stack = volume_to_slices(case.image)
        labels = labels_to_slices(lab_img, stack)
        target = make_targets(stack.slices, labels, blood_mean=blood_mean)
        after = to_stack_scale(stack, mean)
        before = stack.slices.astype(np.float64)
        for s in range(stack.num_slices):
            myo, scar, blood = labels[s] == L.MYOCARDIUM, labels[s] == L.SCAR, labels[s] == L.BLOOD
            if myo.sum() < 10:
                continue
            row = {"case": case.name, "slice": s + 1, "contrast": case.contrast, "has_scar": bool(scar.sum() >= 5),
                   "remote_change": _change(after[s], before[s], myo),
                   "blood_change": _change(after[s], before[s], blood) if blood.sum() >= 5 else float("nan"),
                   "seconds_case": round(seconds, 2)}
            if row["has_scar"]:
                for name, img in (("before", before[s]), ("target", target[s]), ("after", after[s])):
                    c = tissue_cnrs(img, labels[s])
                    row[f"cnr_scar_myo_{name}"], row[f"cnr_scar_blood_{name}"] = c["cnr_scar_myo"], c["cnr_scar_blood"]
                row["scar_above_blood"] = bool(blood.sum() >= 5 and before[s][scar].mean() > before[s][blood].mean())
                # where the gain goes: how far the scar rose (grey levels; the target's rise) and how much noisier
                # the myocardium became, the two halves of CNR(scar, myo) = (scar − myo) / SD(myo)
                row["scar_rise"] = float(after[s][scar].mean() - before[s][scar].mean())
                row["scar_rise_target"] = float(target[s][scar].mean() - before[s][scar].mean())
                sd = float(before[s][myo].std())
                row["myo_sd_change"] = float(after[s][myo].std() / sd - 1.0) if sd > 0 else float("nan")
            rows.append(row)
    out = {"family": family, "cases": len(items), "blood_mean": blood_mean, **_summary(rows), **_intervals(rows, seed),
           **_by_scar_vs_blood(rows)}
    out["voxels_changed_outside_roi"] = sum(outside_changed.values())
    if any(c.contrast != "lge" for c in items):
        # a random-contrast slice's scar need not be brighter than its myocardium: nothing shows where it is
        lge = [r for r in rows if r["contrast"] == "lge"]
        out["lge_contrast_only"] = dict(_summary(lge), **_intervals(lge, seed), voxels_changed_outside_roi=sum(
            outside_changed[c.name] for c in items if c.contrast == "lge"))
    out["safety_verdicts"] = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    out["rows"] = rows
    return out


def _given_myocardium(case: EvalCase, source: str) -> "np.ndarray | None":
    if source == "none":
        return None
    if source == "labels":
        return np.isin(case.labels, (L.MYOCARDIUM, L.SCAR))
    from scarenhance.segmentation import segment

    return sitk.GetArrayFromImage(segment(case.image, model=_heart_model(), device="cpu").labels) == L.CLASS_MYOCARDIUM


@functools.lru_cache(maxsize=1)
def _heart_model():
    from scarenhance.segmentation import load_segmentation_model

    return load_segmentation_model(None, "cpu")


def resummarise(result: dict) -> dict:
    """An earlier result with every family's summaries and intervals recomputed from its rows."""
    families = []
    for family in result["families"]:
        rows = family["rows"]
        redone = {**family, **_summary(rows), **_intervals(rows, result["seed"]), **_by_scar_vs_blood(rows)}
        if "lge_contrast_only" in family:
            lge = [r for r in rows if r["contrast"] == "lge"]
            redone["lge_contrast_only"] = {**family["lge_contrast_only"], **_summary(lge), **_intervals(lge, result["seed"])}
        families.append(redone)
    return {**result, "families": families}


def print_table(results: list[dict]) -> None:
    print(f"\n{'family':<18} {'scar sl.':>8} {'CNR(scar,myo) before→target→after':>36} {'gain':>7} {'CNR(scar,blood) b→a':>20} "
          f"{'worse':>6} {'remote Δ scar/free':>19} {'blood Δ':>8} {'outside':>8}")
    rows = results + [dict(v["lge_contrast_only"], family=f"  {v['family']} LGE") for v in results if "lge_contrast_only" in v]
    for r in rows:
        print(f"{r['family']:<18} {r['scar_slices']:>8} {r['cnr_scar_myo_before']:>10.2f} → {r['cnr_scar_myo_target']:>6.2f} → "
              f"{r['cnr_scar_myo_after']:>6.2f} {100 * r['cnr_scar_myo_gain']:>+6.1f}% {r['cnr_scar_blood_before']:>8.2f} → "
              f"{r['cnr_scar_blood_after']:>6.2f} {r['slices_worse']:>3}/{r['scar_slices']:<3}"
              f"{100 * r['remote_change_scar_slices']:>+8.1f}%/{100 * r['remote_change_scar_free_slices']:>+5.1f}%"
              f"{100 * r['blood_change_scar_slices']:>+7.1f}% {r['voxels_changed_outside_roi']:>8}")

    def span(interval):
        return "–" if interval is None else f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}] %"

    split = [(r["family"], r[key], label) for r in results for key, label in
             (("scar_above_blood", "scar > blood"), ("scar_not_above_blood", "scar ≤ blood")) if key in r]
    if split:
        print("\nScar slices split by whether the scar is brighter than the LV blood in the original:")
        for family, r, label in split:
            if r["scar_slices"]:
                print(f"{family:<18} {label:<13} {r['scar_slices']:>3} slices  gain {100 * r['cnr_scar_myo_gain']:>+6.1f}%  "
                      f"worse {r['slices_worse']:>3}  CNR(scar,blood) {r['cnr_scar_blood_before']:.2f} → {r['cnr_scar_blood_after']:.2f}")

    print("\n95 % intervals, whole cases resampled:")
    for r in rows:
        print(f"{r['family']:<18} gain {span(r['cnr_scar_myo_gain_ci95']):>18}   remote Δ scar "
              f"{span(r['remote_change_scar_slices_ci95']):>18} / free {span(r['remote_change_scar_free_slices_ci95']):>18}")
    print("\nWhere the gain goes (slices with scar; grey levels of the [0, 255] scale):")
    for r in rows:
        if np.isfinite(r.get("scar_rise", np.nan)):
            print(f"{r['family']:<18} scar rose {r['scar_rise']:+6.1f} of the target's {r['scar_rise_target']:+6.1f}; "
                  f"myocardium SD {100 * r['myo_sd_change']:+5.1f} %")
    worst = min(results, key=lambda r: r["cnr_scar_myo_gain"])
    print(f"worst family: {worst['family']} (CNR(scar, myo) {100 * worst['cnr_scar_myo_gain']:+.1f} %, "
          f"{worst['slices_worse']} of {worst['scar_slices']} scar slices worse)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_family_options(ap, "diffusion", cases=6, json_default="benchmarks/results/enh_families.json")
    ap.add_argument("--lam", type=int, default=250)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--min-window", type=int, default=0, metavar="PX")
    ap.add_argument("--myocardium", choices=MYOCARDIUM_SOURCES, default="none",
                    help="what a model with the myocardium input is given (see above; default: none, the ROI alone)")
    ap.add_argument("--agreement", type=float, default=DEFAULT_AGREEMENT, metavar="Z",
                    help=f"standard errors each change is shrunk by (enhance --agreement; default {DEFAULT_AGREEMENT:g}, "
                         "0 = the paper's plain mean of the k samples)")
    ap.add_argument("--data", metavar="DIR",
                    help="measure on the first --cases cases of this labelled dataset instead of the families: on the "
                         "model's own training data it tells a model that does not fit from one that does not transfer")
    ap.add_argument("--from-result", metavar="FILE",
                    help="enhance nothing: print FILE (an earlier result) with its summaries and intervals recomputed "
                         "from its rows; with a --json other than the default, write that there")
    args = ap.parse_args(argv)
    if args.from_result:
        out = resummarise(json.loads(Path(args.from_result).read_text(encoding="utf-8")))
        print(f"{args.from_result}: model {out['model']} {out['model_version']}, seed {out['seed']}, {out['steps']} steps")
        print_table(out["families"])
        if args.json != ap.get_default("json"):  # the default is the official result: never overwritten from here
            write_result(args.json, out)
        return 0
    if args.data and args.json == ap.get_default("json"):
        ap.error("--data needs its own --json: the default is the families' official result")
    apply_threads(args)
    net = load_diffusion_model(args.model)
    window = max(training_windows(net)[0], args.min_window)
    print(f"model {net.metadata.get('name')} {net.metadata.get('version')} ({repo_relative(net.model_dir)}), "
          f"λ {args.lam}, k {args.k}, {args.steps} DDIM steps, agreement {args.agreement:g} SE, ground-truth heart ROI, "
          f"windows of at least {window} px, myocardium given: {args.myocardium}")
    if args.data:
        results = [evaluate_cases(net, Path(args.data).name, dataset_cases(args.data, args.cases), args.seed, args.lam,
                                  args.k, args.steps, args.min_window, args.myocardium, args.agreement)]
    else:
        results = [evaluate_family(net, f, args.cases, args.seed, args.lam, args.k, args.steps, args.min_window, args.myocardium,
                                   args.agreement) for f in args.families.split(",")]
    print_table(results)
    worst = min(results, key=lambda r: r["cnr_scar_myo_gain"])
    out = {"benchmark": "enh_families", "model": repo_relative(net.model_dir), "model_version": net.metadata.get("version"),
           "seed": args.seed, "cases_per_family": args.cases, "lam": args.lam, "k": args.k, "steps": args.steps,
           "agreement": args.agreement, "min_window": window, "roi": "ground truth", "myocardium": args.myocardium, **({"data": repo_relative(args.data)} if args.data else {}), "threads": torch.get_num_threads(),
           "platform": platform.platform(), "worst_family": worst["family"], "families": results}
    write_result(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
