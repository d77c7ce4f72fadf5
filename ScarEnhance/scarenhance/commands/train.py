"""`scarenhance train`: the whole pipeline on a labelled data set — targets, heart segmentation model,
diffusion model, evaluation report — resumable with --resume, and runnable under torchrun.

    scarenhance train --data emidec/ --out runs/site1 --preset cpu-small
    scarenhance train --data emidec/ --out runs/site1 --resume           # after an interruption
    torchrun --nproc_per_node 4 -m scarenhance train --data … --out … --preset gpu-paper
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="labelled data set (EMIDEC, MyoPS or images/ + labels/ layout)")
    p.add_argument("--out", required=True, help="run folder: pipeline.json, targets/, models/, report/")
    p.add_argument("--preset", default="cpu-small", choices=("cpu-small", "gpu-paper"),
                   help="cpu-small: small networks, fast sampling (hours on a laptop CPU); "
                        "gpu-paper: the paper's networks, epochs and full sampling (a GPU)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run in --out (finished steps are skipped)")
    p.add_argument("--eval-data", help="labelled test set for the report (default: the cases held out for validation)")
    p.add_argument("--layout", default="auto", choices=("auto", "emidec", "myops", "generic"))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--lpips-weights", metavar="PATH", help="local LPIPS weights for the report (else LPIPS is unavailable)")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE", dest="overrides",
                   help="change one setting of the preset, e.g. --set diffusion.epochs=100 --set evaluation.k=3 (repeatable)")
    p.add_argument("--stop-after", choices=("targets", "segmentation", "diffusion", "evaluation"),
                   help="stop after this step; --resume runs the rest later")
    p.add_argument("--show-settings", action="store_true", help="print every setting each step will run with (the preset, --set and the defaults), and exit")


def run(args) -> int:
    import json
    from pathlib import Path

    from ..datasets import list_cases

    if args.data and not args.show_settings:  # a missing or empty data set fails fast, before torch and MONAI load
        list_cases(args.data, args.layout)
    from ..pipeline import PipelineOptions, parse_overrides, resolved_settings, run_pipeline
    from ..progress import cli_progress, echo

    options = PipelineOptions(
        data=Path(args.data), out=Path(args.out), preset=args.preset, resume=args.resume, layout=args.layout,
        device=args.device, eval_data=Path(args.eval_data) if args.eval_data else None,
        overrides=parse_overrides(args.overrides), stop_after=args.stop_after, lpips_weights=args.lpips_weights,
        command=args.command_line,
    )
    if args.show_settings:
        print(json.dumps(resolved_settings(options), indent=2))
        return 0
    state = run_pipeline(options, progress=cli_progress, log=echo)
    steps = state["steps"]
    if steps["evaluation"]["status"] == "done":
        print(f"report: {steps['evaluation']['outputs']['report']}")
        for step in ("segmentation", "diffusion"):
            print(f"{step} model: {steps[step]['outputs']['model']}")
    return 0
