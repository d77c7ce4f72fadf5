"""Heart-model robustness across data families that no shipped model trained on (evaluation/families.py):
Dice of the heart ROI (blood ∪ myocardium), and of the LV myocardium and blood pool classes, per family,
against the family's ground truth, with the plausibility check's verdicts and, on cases with scar, the share
of the scar the model calls blood pool (which the ROI's Dice cannot see). The worst family is the headline.

    .venv/bin/python benchmarks/seg_families.py [--model DIR|ID] [--cases 12] [--seed 9001]
        [--families phantom,phantom-real-lge,synth-unseen] [--threads 2] [--json benchmarks/results/seg_families.json]

Prints a table per family (mean ± SD, min, cases below 0.5, flagged as implausible) and writes JSON
(repository-relative model path, no machine paths).
"""

from __future__ import annotations

import argparse
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

from scarenhance import labels as L  # noqa: E402
from scarenhance.evaluation.families import family_cases  # noqa: E402
from scarenhance.segmentation import load_segmentation_model, segment  # noqa: E402
from scarenhance.evaluation.metrics import dice, scar_called_blood  # noqa: E402
from repo_paths import add_family_options, apply_threads, repo_relative, write_result  # noqa: E402


def evaluate_family(model, family: str, cases: int, seed: int) -> dict:
    rows = []
    for case in family_cases(family, cases, seed):
        tic = time.perf_counter()
        result = segment(case.image, model=model, device=str(model.device))
        seconds = time.perf_counter() - tic
        roi = sitk.GetArrayFromImage(result.roi) > 0
        truth = L.heart_classes(case.labels)
        row = {"case": case.name, "size": list(case.image.GetSize()), "spacing": [round(s, 3) for s in case.image.GetSpacing()],
               "dice_heart": dice(roi, truth > 0), "plausible": result.report.plausible,
               "warnings": result.report.warnings, "seconds": round(seconds, 2)}
        if result.labels is not None:
            labels = sitk.GetArrayFromImage(result.labels)
            row["dice_myocardium"] = dice(labels == L.CLASS_MYOCARDIUM, truth == L.CLASS_MYOCARDIUM)
            row["dice_blood"] = dice(labels == L.CLASS_BLOOD, truth == L.CLASS_BLOOD)
            share = scar_called_blood(labels, case.labels)
            row["scar_called_blood"] = None if np.isnan(share) else share  # None: the case has no scar
        rows.append(row)
        print(f"  {case.name:<18} {str(row['size']):>16} {row['spacing'][0]:>5.2f} mm  Dice heart {row['dice_heart']:.3f}"
              + (f"  myo {row['dice_myocardium']:.3f}  blood {row['dice_blood']:.3f}" if "dice_myocardium" in row else "")
              + (f"  scar called blood {row['scar_called_blood']:.0%}" if row.get("scar_called_blood") is not None else "")
              + ("" if row["plausible"] else "  FLAGGED: " + "; ".join(row["warnings"])), flush=True)
    d = np.array([r["dice_heart"] for r in rows])
    summary = {"family": family, "cases": len(rows), "mean_dice_heart": float(d.mean()), "sd_dice_heart": float(d.std()),
               "min_dice_heart": float(d.min()), "below_0_5": int((d < 0.5).sum()),
               "flagged": int(sum(not r["plausible"] for r in rows)),
               "flagged_below_0_5": int(sum((not r["plausible"]) for r in rows if r["dice_heart"] < 0.5)),
               "rows": rows}
    for key in ("dice_myocardium", "dice_blood"):
        if all(key in r for r in rows):
            summary[f"mean_{key}"] = float(np.mean([r[key] for r in rows]))
    shares = [r["scar_called_blood"] for r in rows if r.get("scar_called_blood") is not None]
    summary["scar_cases"] = len(shares)
    summary["mean_scar_called_blood"] = float(np.mean(shares)) if shares else None  # over cases with scar
    return summary


def _share(value, cases: int) -> str:
    return "–" if value is None else f"{value:.0%} ({cases} cases)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_family_options(ap, "heart", cases=12, json_default="benchmarks/results/seg_families.json")
    args = ap.parse_args(argv)
    apply_threads(args)
    model = load_segmentation_model(args.model, "cpu")
    print(f"model {model.metadata.get('name')} {model.metadata.get('version')} ({repo_relative(model.path)})")
    results = []
    for family in args.families.split(","):
        print(f"family {family}:")
        results.append(evaluate_family(model, family, args.cases, args.seed))
    print(f"\n{'family':<18} {'cases':>5} {'Dice heart':>14} {'min':>6} {'<0.5':>5} {'myo':>6} {'blood':>6} {'flagged':>8} "
          f"{'scar called blood':>18}")
    for r in results:
        print(f"{r['family']:<18} {r['cases']:>5} {r['mean_dice_heart']:>7.3f} ± {r['sd_dice_heart']:.3f} {r['min_dice_heart']:>6.3f} "
              f"{r['below_0_5']:>5} {r.get('mean_dice_myocardium', float('nan')):>6.3f} {r.get('mean_dice_blood', float('nan')):>6.3f} "
              f"{r['flagged']:>8} {_share(r['mean_scar_called_blood'], r['scar_cases']):>18}")
    worst = min(results, key=lambda r: r["mean_dice_heart"])
    print(f"worst family: {worst['family']} (mean heart Dice {worst['mean_dice_heart']:.3f}, min {worst['min_dice_heart']:.3f})")
    out = {"benchmark": "seg_families", "model": repo_relative(model.path), "model_version": model.metadata.get("version"),
           "seed": args.seed, "cases_per_family": args.cases, "threads": torch.get_num_threads(),
           "platform": platform.platform(), "worst_family": worst["family"], "families": results}
    write_result(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
