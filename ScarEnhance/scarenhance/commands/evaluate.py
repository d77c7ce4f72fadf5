"""`scarenhance evaluate`: Table 1/2, λ sweep, false enhancement and figures for a labelled data set."""

from __future__ import annotations

import argparse
from pathlib import Path


def _int_list(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "off"):
        return []
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..diffusion.agreement import DEFAULT_AGREEMENT
    from ..evaluation.paper import LAMBDA_SWEEP as DEFAULT_SWEEP

    p.add_argument("--data", required=True, help="labelled data set (EMIDEC, MyoPS or images/ + labels/ layout)")
    p.add_argument("--report", required=True, metavar="DIR", help="report folder to write (report.json, report.md, figures/)")
    p.add_argument("--seg-model", metavar="M", help="heart segmentation model folder or registry id (default: shipped)")
    p.add_argument("--diffusion-model", metavar="M", help="scar diffusion model folder or registry id (default: shipped)")
    p.add_argument("--whole-image-model", metavar="M",
                   help="diffusion model trained with whole-image noise (m = 1) for the Table 2 ablation")
    p.add_argument("--lam", type=int, default=250, help="partial-diffusion start step λ (default 250, paper)")
    p.add_argument("--k", type=int, default=5, help="samples averaged (default 5, paper)")
    p.add_argument("--steps", type=int, default=None,
                   help="N-step DDIM chain (fast); default: the paper's ancestral chain of λ steps")
    p.add_argument("--agreement", type=float, default=DEFAULT_AGREEMENT, metavar="Z",
                   help=f"standard errors each change is shrunk by, as `enhance --agreement` (default {DEFAULT_AGREEMENT:g}; "
                        "0 = the paper's plain mean of the k samples)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--dilate-mm", type=float, default=0.0, help="grow the predicted heart ROI by this many mm")
    p.add_argument("--lpips-weights", metavar="PATH",
                   help="local LPIPS weights (AlexNet/VGG + lin layers); without it LPIPS is reported as unavailable")
    p.add_argument("--lam-sweep", type=_int_list, default=list(DEFAULT_SWEEP), metavar="L1,L2,…",
                   help="λ values of the Fig. 2 sweep ('none' to skip; default %(default)s)")
    p.add_argument("--sweep-cases", nargs="+", metavar="CASE",
                   help="cases of the λ sweep (default: those with the largest and smallest scar burden)")
    p.add_argument("--sweep-k", type=int, metavar="K", help="samples per λ in the sweep (default: --k)")
    p.add_argument("--figure-cases", type=int, default=3, help="cases shown in figures/cases.png")
    p.add_argument("--no-single-sample", action="store_true", help="skip the k = 1 run of the Table 2 ablation")
    p.add_argument("--max-cases", type=int, help="evaluate only the first N cases")
    p.add_argument("--layout", default="auto", choices=("auto", "emidec", "myops", "generic"))
    p.add_argument("--no-volumes", action="store_true", help="do not write cases/<name>/*.nii.gz")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report in --report")


def run(args: argparse.Namespace) -> int:
    from ..datasets import list_cases
    from ..diffusion.inputs import check_parameters
    from ..diffusion.schedule import T

    check_parameters(args.lam, args.k, None, None, T, args.agreement)  # refused before minutes of work
    if args.data:  # a missing or empty data set fails fast, before torch and MONAI load
        list_cases(args.data, args.layout)
    from ..evaluation.models import ModelPair
    from ..evaluation.report import EvalSettings, evaluate_dataset
    from ..progress import cli_progress, echo

    settings = EvalSettings(
        lam=args.lam, k=args.k, steps=args.steps, seed=args.seed, single_sample=not args.no_single_sample,
        lam_sweep=tuple(args.lam_sweep), sweep_cases=args.sweep_cases, sweep_k=args.sweep_k, figure_cases=args.figure_cases,
        lpips_weights=args.lpips_weights, max_cases=args.max_cases, save_volumes=not args.no_volumes,
        layout=args.layout,
    )
    models = ModelPair(args.seg_model, args.diffusion_model, args.whole_image_model, steps=args.steps,
                       device=args.device, dilate_mm=args.dilate_mm, agreement=args.agreement)
    if models.device.type == "cpu" and args.steps is None:
        print(f"note: the paper's {args.lam}-step chain × k = {args.k} runs on the CPU here, which takes minutes per "
              "slice; --steps 20 is the fast mode", flush=True)
    report = evaluate_dataset(args.data, models, args.report, settings, overwrite=args.overwrite,
                              progress=cli_progress, log=echo)
    print(summary_lines(report, args.report), flush=True)
    return 0


def summary_lines(report: dict, report_dir: str) -> str:
    """The headline numbers, for the terminal."""
    from ..evaluation.stats import format_mean_sd, format_p

    s = report["summary"]
    t1 = s["table1"]
    lines = [f"{s['n_slices_with_scar']} slices with scar in {s['n_cases']} cases:"]
    for key, name in (("cnr_scar_myo", "CNR(scar,myo)"), ("cnr_scar_blood", "CNR(scar,blood)")):
        w = s["wilcoxon"]["output_vs_original"][key]
        lines.append(f"  {name:16s} original {format_mean_sd(t1['original'][key])}  →  output "
                     f"{format_mean_sd(t1['output'][key])}  (target {format_mean_sd(t1['target'][key])}; Wilcoxon p {format_p(w['p'])})")
    lines.append(f"  SSIM {format_mean_sd(t1['output']['ssim_pct'])} %   PSNR {format_mean_sd(t1['output']['psnr_db'])} dB   "
                 f"LPIPS {format_mean_sd(t1['output']['lpips'], 3) if t1['output']['lpips']['n'] else 'unavailable'}")
    lines.append(f"  heart Dice per slice {format_mean_sd(s['heart_dice']['per_slice'], 3)}")
    lines.append(f"report: {Path(report_dir) / 'report.md'}")
    return "\n".join(lines)
