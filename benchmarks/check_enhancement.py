"""Does the shipped diffusion model do its job? Checked on fresh phantom cases (a seed never trained on).

With the ground-truth heart as ROI, for each case: enhance_scar, then
- CNR(scar, myo) and CNR(scar, blood) before and after, per slice with scar (both on the original's
  per-slice [0, 255] scale), averaged over all such slices; goal: CNR(scar, myo) rises by ≥ 20 %;
- scar-free cases: the myocardium's mean intensity after vs before; goal: within 2 %;
- voxels changed outside the ROI (compared bit for bit); goal: 0.

    .venv/bin/python benchmarks/check_enhancement.py [--model DIR] [--cases 6] [--scar-free 3] [--seed 424242]
        [--lam 250] [--k 5] [--steps 20 | --steps full] [--json OUT.json]

Prints a table, writes JSON, exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ScarEnhance"))
from repo_paths import repo_relative  # noqa: E402  (benchmarks/ is the script's folder)

from scarenhance import labels as L  # noqa: E402
from scarenhance.diffusion import enhance_scar, load_diffusion_model  # noqa: E402
from scarenhance.evaluation.metrics import cnr  # noqa: E402
from scarenhance.geometry import to_stack_scale, volume_to_slices  # noqa: E402
from scarenhance.phantom import canonical_labels, case_seed, generate_case  # noqa: E402

CNR_GAIN_GOAL = 0.20
MYO_DRIFT_GOAL = 0.02


def check_case(case, model, args) -> dict:
    labels = canonical_labels(case)  # (z, y, x) canonical classes
    roi = sitk.GetImageFromArray(L.heart_mask(labels).astype(np.uint8))
    roi.CopyInformation(case.image)
    tic = time.perf_counter()
    mean, _ = enhance_scar(case.image, roi, model=model, lam=args.lam, k=args.k, steps=args.steps, seed=args.seed, device=args.device)
    seconds = time.perf_counter() - tic
    before_vol, after_vol = sitk.GetArrayFromImage(case.image), sitk.GetArrayFromImage(mean)
    outside = ~L.heart_mask(labels)
    changed_outside = int(np.count_nonzero(after_vol[outside] != before_vol[outside].astype(after_vol.dtype)))

    stack = volume_to_slices(case.image)
    lab = np.transpose(labels, stack.axes)
    before, after = stack.slices.astype(np.float64), to_stack_scale(stack, mean)
    rows = []
    for i in range(lab.shape[0]):
        scar, myo, blood = lab[i] == L.SCAR, lab[i] == L.MYOCARDIUM, lab[i] == L.BLOOD
        if scar.sum() >= 5 and myo.sum() >= 5 and blood.sum() >= 5:
            rows.append([cnr(before[i], scar, myo), cnr(after[i], scar, myo), cnr(before[i], scar, blood), cnr(after[i], scar, blood)])
    myo_vox = labels == L.MYOCARDIUM
    myo_before, myo_after = float(before_vol[myo_vox].mean()), float(after_vol[myo_vox].mean())
    return {
        "name": case.name, "pattern": case.info.get("scar", {}).get("pattern") if isinstance(case.info.get("scar"), dict) else None,
        "slices_with_scar": len(rows), "cnr_rows": rows, "changed_outside_roi": changed_outside,
        "myo_mean_before": myo_before, "myo_mean_after": myo_after, "myo_rel_change": myo_after / myo_before - 1.0,
        "seconds": round(seconds, 2),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="diffusion model folder (default: the shipped demo model)")
    p.add_argument("--cases", type=int, default=6, help="phantom cases with scar")
    p.add_argument("--scar-free", type=int, default=3, help="phantom cases without scar")
    p.add_argument("--seed", type=int, default=424242, help="phantom and sampling seed (the demo model trained on seed 1000)")
    p.add_argument("--lam", type=int, default=250)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--steps", default="20", help="fast-mode steps, or 'full' for the λ-step DDPM chain")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default="benchmarks/results/check_enhancement.json")
    args = p.parse_args(argv)
    args.steps = None if args.steps == "full" else int(args.steps)

    model = load_diffusion_model(args.model)
    print(f"model {model.model_dir} | λ={args.lam} k={args.k} steps={args.steps or 'full'} | phantom seed {args.seed}", flush=True)
    scarred, free = [], []
    for i in range(1, args.cases + args.scar_free + 1):
        overrides = {} if i <= args.cases else {"scar_pattern": "none"}
        case = generate_case(case_seed(args.seed, i), **overrides)
        if i <= args.cases and not (canonical_labels(case) == L.SCAR).any():
            case = generate_case(case_seed(args.seed, i), scar_pattern="transmural")  # the random draw had no scar
        result = check_case(case, model, args)
        (scarred if i <= args.cases else free).append(result)
        print(f"  {case.name:18} slices with scar {result['slices_with_scar']:2d}  myo mean {result['myo_rel_change']:+.2%}  "
              f"changed outside ROI {result['changed_outside_roi']}  {result['seconds']:.1f} s", flush=True)

    rows = np.array([r for c in scarred for r in c["cnr_rows"]], dtype=np.float64)
    means = np.nanmean(rows, axis=0)
    gain_myo, gain_blood = means[1] / means[0] - 1.0, means[3] / means[2] - 1.0
    worst_drift = max((abs(c["myo_rel_change"]) for c in free), default=0.0)
    changed = sum(c["changed_outside_roi"] for c in scarred + free)
    checks = {
        "cnr_scar_myo_gain_ge_20pct": bool(gain_myo >= CNR_GAIN_GOAL),
        "scar_free_myo_within_2pct": bool(worst_drift <= MYO_DRIFT_GOAL),
        "zero_voxels_changed_outside_roi": changed == 0,
    }
    print(f"\n{'':22}{'original':>10}{'enhanced':>10}{'change':>9}")
    print(f"{'CNR(scar,myo)':22}{means[0]:>10.2f}{means[1]:>10.2f}{gain_myo:>+9.1%}")
    print(f"{'CNR(scar,blood)':22}{means[2]:>10.2f}{means[3]:>10.2f}{gain_blood:>+9.1%}")
    print(f"{len(rows)} slices with scar in {len(scarred)} cases; scar-free myocardium drift ≤ {worst_drift:.2%} "
          f"over {len(free)} cases; voxels changed outside the ROI: {changed}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    report = {
        "settings": {"model": repo_relative(model.model_dir), "lam": args.lam, "k": args.k, "steps": args.steps, "seed": args.seed,
                     "cases": args.cases, "scar_free": args.scar_free},
        "cnr_scar_myo": {"before": means[0], "after": means[1], "gain": gain_myo},
        "cnr_scar_blood": {"before": means[2], "after": means[3], "gain": gain_blood},
        "scar_free_max_myo_drift": worst_drift, "changed_outside_roi": changed, "checks": checks,
        "cases": scarred + free,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {out}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
