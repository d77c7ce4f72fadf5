"""Headless entry of ScarEnhanceTraining: `Slicer --no-main-window --python-script ScarEnhanceTraining.py ARGS`
(or plain Python): parse the arguments, run the pipeline in a child process, print progress, exit code 0/1/2."""

import argparse
import sys

from .TrainingLogic import PRESETS, STEPS, TrainingLogic, TrainingParameters, describeState


def main(argv=None) -> int:
    """Headless entry: `Slicer --no-main-window --python-script ScarEnhanceTraining.py ARGS` (or plain Python)."""
    parser = argparse.ArgumentParser(prog="ScarEnhanceTraining", description="Train and evaluate ScarEnhance's models on a labelled LGE data set.")
    parser.add_argument("--data", required=True, help="labelled data set (EMIDEC, MyoPS or images/ + labels/)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--preset", default="cpu-small", choices=PRESETS)
    parser.add_argument("--resume", action="store_true", help="finish an interrupted run in --out")
    parser.add_argument("--eval-data", default="", help="labelled test set for the report")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="STEP.KEY=VALUE")
    parser.add_argument("--stop-after", default="", choices=("",) + STEPS)
    parser.add_argument("--import-models", action="store_true", help="add the trained models to ScarEnhance's model list")
    parser.add_argument("--models-dir", help="model folder of the registry (default: ScarEnhance's user model folder)")
    parser.add_argument("--python", help="interpreter of the child process (default: PythonSlicer, else this one)")
    args = parser.parse_args(argv)

    registry = None
    if args.models_dir:
        from ScarEnhanceLib.ModelRegistry import ModelRegistry

        registry = ModelRegistry(args.models_dir)
    logic = TrainingLogic(registry=registry, python=args.python)
    params = TrainingParameters(args.data, args.out, preset=args.preset, resume=args.resume, evalDataFolder=args.eval_data,
                                device=args.device, overrides=args.overrides, stopAfter=args.stop_after)
    problems = params.problems()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    last = [-1.0]

    def onProgress(p):
        if p.fraction - last[0] >= 0.01 or p.fraction >= 1.0:  # one line per percent is plenty in a log
            last[0] = p.fraction
            print(f"{100 * p.fraction:5.1f} %  {p.message}", flush=True)

    result = logic.run(params, onProgress=onProgress, onLog=lambda line: print(line, flush=True),
                       importModels=args.import_models)
    print(f"ScarEnhanceTraining: {result.status.value}; steps: {describeState(result.state)}", flush=True)
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
    if result.reportPath:
        print(f"report: {result.reportPath}")
    return 0 if result.succeeded else 1
