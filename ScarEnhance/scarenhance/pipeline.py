"""The whole training pipeline on a site's labelled data: targets → heart segmentation → diffusion → evaluation.

    scarenhance train --data DIR --out RUN [--preset cpu-small|gpu-paper] [--resume]

    RUN/
      pipeline.json                      settings (as given and fully resolved) and the state of every step (the resume record)
      targets/                           gamma-corrected target volumes + targets.json (to inspect; the
                                         diffusion trainer makes the same targets on the fly)
      models/<run>-heart-seg/            segmentation model folder (bundle layout, SHA-256; checkpoints in training/)
      models/<run>-scar-diffusion/       diffusion model folder
      report/                            report.md, report.json, figures/ (scarenhance evaluate)

Each step records "running" before it starts and "done" (with its outputs and time) after, in
pipeline.json, written atomically. A rerun with --resume skips done steps and continues an interrupted
training step from its last epoch checkpoint (training.fit resumes from <model>/training/latest.pt).
Under torchrun the training steps run on every process (DDP); targets, evaluation and the state file
belong to rank 0.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .errors import InputError
from .progress import ProgressFn, check_cancel, no_progress, scaled

STEPS = ("targets", "segmentation", "diffusion", "evaluation")
STATE_FILE = "pipeline.json"
FORMAT = 1

# Per-step settings. Keys are keyword arguments of segmentation.train.train_segmentation and fields of
# diffusion.train.DiffusionTrainConfig and evaluation.report.EvalSettings. `--set step.key=value` changes any of them.
PRESETS: dict[str, dict] = {
    # A CPU: the settings of the shipped demo models (small networks, the diffusion model trained on
    # t < 400 where inference at λ ≤ 300 runs); fast DDIM sampling in the evaluation.
    "cpu-small": {
        # "auto": start from the shipped model when this run's network matches it (fine-tuning), else from scratch
        "segmentation": {"preset": "cpu-medium", "init_from": "auto"},
        # the shipped enhancer's recipe (its README): residual prediction, min-SNR absolute-error loss (fine-tuning
        # the shipped 0.6.0 with the squared error would teach it to brighten probably-healthy pixels again), steps
        # noised from the original, scar and myocardium weighted, randomized ROIs, whole-heart crops
        "diffusion": {"preset": "cpu-small", "prediction": "residual", "snr_gamma": 5.0, "loss_norm": 1, "init_from": "auto", "epochs": 60,
                      "batch_size": 8, "crop_size": 128, "lr": 1e-4, "ema_decay": 0.995, "t_max": 400, "from_original": 0.7,
                      "scar_weight": 5.0, "myo_weight": 5.0, "roi_source": "randomized", "sample_every": 10},
        "evaluation": {"lam": 250, "k": 5, "steps": 20, "lam_sweep": [10, 50, 100, 150, 200, 250, 300, 400], "sweep_k": 2},
    },
    # The paper's settings (§3.2): U-Net Adam 1e-3, batch 64, 100 epochs; SR3 U-Net Adam 1e-4, batch 16,
    # 200 epochs, T = 1000; full ancestral sampling at λ = 250, k = 5.
    "gpu-paper": {
        "segmentation": {"preset": "gpu-paper"},
        "diffusion": {"preset": "gpu-paper", "epochs": 200, "batch_size": 16, "crop_size": 128, "t_max": 1000,
                      "lr": 1e-4, "roi_source": "model", "sample_every": 20},
        "evaluation": {"lam": 250, "k": 5, "steps": None, "lam_sweep": [1, 25, 50, 100, 150, 200, 250, 300, 400, 600, 800]},
    },
}
# Share of the whole run's progress bar per step (training dominates).
WEIGHTS = {"targets": 0.02, "segmentation": 0.23, "diffusion": 0.6, "evaluation": 0.15}


@dataclass
class PipelineOptions:
    data: Path
    out: Path
    preset: str = "cpu-small"
    resume: bool = False
    layout: str = "auto"
    device: str = "auto"
    eval_data: Optional[Path] = None  # held-out test set; default: the diffusion model's validation cases
    overrides: dict = field(default_factory=dict)  # {"diffusion": {"epochs": 2}, ...}
    stop_after: Optional[str] = None  # stop after this step (the rest runs on a later --resume)
    lpips_weights: Optional[str] = None
    command: Optional[str] = None  # recorded in the models' metadata

    @property
    def name(self) -> str:
        return Path(self.out).resolve().name

    def settings(self) -> dict:
        """The preset with the overrides applied: what identifies the run (checked on --resume)."""
        if self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        merged = copy.deepcopy(PRESETS[self.preset])
        for step, values in self.overrides.items():
            if step not in merged:
                raise InputError(f"--set names an unknown step {step!r} (steps with settings: {', '.join(merged)})")
            merged[step].update(values)
        return merged

    def model_dir(self, kind: str) -> Path:
        suffix = {"segmentation": "heart-seg", "diffusion": "scar-diffusion"}[kind]
        return Path(self.out) / "models" / f"{self.name}-{suffix}"


def parse_overrides(items: list[str]) -> dict:
    """["diffusion.epochs=2", "evaluation.lam_sweep=[1,250]"] → {"diffusion": {"epochs": 2}, ...} (values JSON, else text)."""
    out: dict = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        step, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise InputError(f"--set expects STEP.KEY=VALUE (e.g. diffusion.epochs=20), got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out.setdefault(step, {})[name.replace("-", "_")] = value
    return out


# ---- state file ------------------------------------------------------------------------------------


def read_state(out: "str | Path") -> Optional[dict]:
    path = Path(out) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"the pipeline state file is unreadable ({e}); start a new run in another folder", path) from e
    if state.get("format") != FORMAT:
        raise InputError(f"pipeline state format {state.get('format')} is not {FORMAT}", path)
    return state


def write_state(out: Path, state: dict) -> None:
    from .bundle import atomic_write_bytes

    atomic_write_bytes(out / STATE_FILE, json.dumps(state, indent=2).encode())


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def _identity(options: PipelineOptions) -> dict:
    return {"data": str(Path(options.data).resolve()), "layout": options.layout, "preset": options.preset,
            "eval_data": None if options.eval_data is None else str(Path(options.eval_data).resolve()),
            "settings": options.settings()}


def start_or_resume(options: PipelineOptions) -> dict:
    """The state to run with: a new one, or the folder's own after checking --resume and the settings."""
    out = Path(options.out)
    state = read_state(out)
    identity = _identity(options)
    if state is None:
        if out.exists() and any(out.iterdir()) and not options.resume:
            raise InputError("the output folder is not empty and holds no pipeline run; choose an empty or new folder", out)
        return {"format": FORMAT, "created": _now(), **identity, "resolved_settings": resolved_settings(options),
                "steps": {s: {"status": "pending", "runs": 0} for s in STEPS}}
    if not options.resume:
        raise InputError("this folder holds a pipeline run already: pass --resume to finish it, or choose another --out", out)
    different = [k for k in identity if json.dumps(state.get(k), sort_keys=True) != json.dumps(identity[k], sort_keys=True)]
    if different:
        shown = "; ".join(f"{k}: run has {json.dumps(state.get(k))[:120]}, now {json.dumps(identity[k])[:120]}" for k in different)
        raise InputError(f"--resume with other settings than the run was started with ({shown}); "
                         "use the same --data/--preset/--set, or a new --out", out / STATE_FILE)
    return state


# ---- the run ---------------------------------------------------------------------------------------


def run_pipeline(options: PipelineOptions, progress: ProgressFn = no_progress, cancel: Optional[threading.Event] = None,
                 log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the pipeline; returns the final state. Raises InputError for bad options."""
    from .training import barrier, broadcast_object, cleanup, init_distributed

    if options.stop_after is not None and options.stop_after not in STEPS:
        raise InputError(f"--stop-after must be one of {', '.join(STEPS)}, got {options.stop_after!r}")
    ctx = init_distributed(options.device)
    out = Path(options.out)
    state, problem = None, None
    if ctx.is_main:
        try:
            from .datasets import list_cases

            list_cases(options.data, options.layout)  # a bad data folder fails here, before anything is written
            state = start_or_resume(options)
            out.mkdir(parents=True, exist_ok=True)
            write_state(out, state)
        except InputError as e:
            problem = e
    state, problem = broadcast_object((state, problem), ctx)  # every rank stops on rank 0's error
    if problem is not None:
        cleanup(ctx)
        raise problem
    settings = state["settings"]

    start = 0.0
    for step in STEPS:
        portion = scaled(progress, start, start + WEIGHTS[step])
        start += WEIGHTS[step]
        record = state["steps"][step]
        if record["status"] == "done":
            if ctx.is_main:
                log(f"[{step}] done already ({record.get('finished')}), skipped")
            portion(1.0, f"{step}: done already")
            continue
        check_cancel(cancel)
        collective = step != "evaluation"  # evaluation is rank 0's alone
        if not collective and not ctx.is_main:
            break
        resuming = record["status"] == "running"  # an earlier run stopped inside this step
        if ctx.is_main:
            record.update(status="running", started=_now(), runs=record.get("runs", 0) + 1)
            write_state(out, state)
            log(f"[{step}] {'resuming' if resuming else 'starting'}")
        if collective:
            barrier(ctx)
        tic = time.perf_counter()
        # the trainers join the process group opened above and leave it open (training.cleanup ends only
        # a group its own context created): one group for the whole run, ended below
        outputs = STEP_FUNCTIONS[step](options, settings, state, resuming, ctx, portion, cancel, log)
        if ctx.is_main:
            record.update(status="done", finished=_now(), seconds=round(time.perf_counter() - tic, 1), outputs=outputs)
            write_state(out, state)
            log(f"[{step}] done in {record['seconds']:.0f} s")
        if options.stop_after == step:
            if ctx.is_main:
                log(f"stopped after {step} as asked; run again with --resume to finish")
            progress(1.0, f"stopped after {step}")
            break
    cleanup(ctx)
    return state


def _targets(options, settings, state, resuming, ctx, progress, cancel, log) -> dict:
    from .targets import GammaConfig, write_dataset_targets

    if not ctx.is_main:
        return {}
    folder = Path(options.out) / "targets"
    report = write_dataset_targets(options.data, folder, GammaConfig(), layout=options.layout,
                                   overwrite=resuming, progress=progress)
    log(f"[targets] {len(report['cases'])} target volumes, dataset blood mean {report['dataset_blood_mean']:.2f}")
    return {"folder": str(folder), "dataset_blood_mean": report["dataset_blood_mean"], "cases": len(report["cases"])}


def _segmentation(options, settings, state, resuming, ctx, progress, cancel, log) -> dict:
    from .segmentation.train import train_segmentation

    folder = options.model_dir("segmentation")
    kwargs = _keywords(train_segmentation, settings["segmentation"], "segmentation")
    if kwargs.get("init_from") == "auto":
        kwargs["init_from"] = _shipped_heart_model_if_it_fits(kwargs, log)
    summary = train_segmentation(options.data, folder, **kwargs, layout=options.layout, device=options.device,
                                 resume=resuming, command=options.command, progress=progress, cancel=cancel)
    return {"model": str(folder), "summary": _jsonable(summary)}


def _diffusion_config(options, settings):
    from .diffusion.train import DiffusionTrainConfig

    values = dict(settings["diffusion"])
    if values.get("init_from") == "auto":
        values["init_from"] = _shipped_diffusion_model_if_it_fits(values)
    if values.get("roi_source") == "model" and not values.get("seg_model"):
        values["seg_model"] = str(options.model_dir("segmentation"))  # the paper: ROI from the trained U-Net
    return _config(DiffusionTrainConfig, values, "diffusion")


def _diffusion(options, settings, state, resuming, ctx, progress, cancel, log) -> dict:
    from .diffusion.train import train_diffusion

    folder = options.model_dir("diffusion")
    config = _diffusion_config(options, settings)
    summary = train_diffusion(options.data, folder, config, layout=options.layout, device=options.device,
                              resume=resuming, command=options.command, progress=progress, cancel=cancel)
    return {"model": str(folder), "summary": _jsonable(summary)}


def _evaluation(options, settings, state, resuming, ctx, progress, cancel, log) -> dict:
    from .evaluation.models import ModelPair
    from .evaluation.report import EvalSettings, evaluate_dataset

    if not ctx.is_main:
        return {}
    values = dict(settings["evaluation"])
    values.setdefault("lpips_weights", options.lpips_weights)
    data = options.eval_data
    if data is None:
        values["cases"] = held_out_cases(options)
        data = options.data
    settings_obj = _config(EvalSettings, {**values, "layout": options.layout}, "evaluation")
    models = ModelPair(options.model_dir("segmentation"), options.model_dir("diffusion"), steps=settings_obj.steps,
                       device=options.device, cancel=cancel)
    report_dir = Path(options.out) / "report"
    report = evaluate_dataset(data, models, report_dir, settings_obj, overwrite=True, progress=progress,
                              cancel=cancel, log=lambda line: log(f"[evaluation] {line}"))
    t1 = report["summary"]["table1"]
    headline = {key: {v: (t1[v][key]["mean"] if t1[v] else None) for v in ("original", "target", "output")}
                for key in ("cnr_scar_myo", "cnr_scar_blood")}
    return {"report": str(report_dir / "report.md"), "data": str(data), "cases": values.get("cases"), "headline": headline}


def held_out_cases(options: PipelineOptions) -> list[str]:
    """Cases that neither model trained on: validation cases of both trainers (used only to pick the best
    epoch). Both split with the same seeded permutation, so the diffusion's 15 % lie inside the U-Net's 20 %."""
    held = None
    for kind, key in (("segmentation", "val_case_names"), ("diffusion", "val_cases")):
        meta = json.loads((options.model_dir(kind) / "configs" / "metadata.json").read_text(encoding="utf-8"))
        names = set(meta["scarenhance"].get("training", {}).get(key) or [])
        held = names if held is None else held & names
    if not held:
        raise InputError("no case was held out from both trainings to evaluate on (different seeds or too few cases?); "
                         "pass --eval-data with a labelled test set", options.data)
    return sorted(held)


STEP_FUNCTIONS = {"targets": _targets, "segmentation": _segmentation, "diffusion": _diffusion, "evaluation": _evaluation}


def resolved_settings(options: PipelineOptions) -> dict:
    """Every value each step runs with: the preset and --set, filled in with the trainers' own defaults
    and the segmentation preset's numbers (what `train --show-settings` prints and pipeline.json records)."""
    import inspect
    from dataclasses import asdict

    from .diffusion.network import PRESETS as DIFFUSION_NETWORKS
    from .evaluation.report import EvalSettings
    from .segmentation import network as seg_network
    from .segmentation.train import train_segmentation

    settings = options.settings()
    given = _keywords(train_segmentation, settings["segmentation"], "segmentation")
    parameters = inspect.signature(train_segmentation).parameters
    seg = {k: p.default for k, p in parameters.items() if k not in _PIPELINE_ARGUMENTS and p.default is not inspect.Parameter.empty}
    seg.update(given)
    preset = seg_network.PRESETS.get(seg["preset"])
    if preset is None:
        raise InputError(f"unknown segmentation preset {seg['preset']!r}: choose one of {', '.join(seg_network.PRESETS)}")
    for key, value in preset.items():  # train_segmentation takes the preset's value for every None (or 0)
        if key in seg and not seg[key]:
            seg[key] = value
    seg["network"] = seg_network.network_def(seg["preset"], seg["channels"])
    diffusion = asdict(_diffusion_config(options, settings))
    if diffusion["preset"] not in DIFFUSION_NETWORKS:
        raise InputError(f"unknown diffusion preset {diffusion['preset']!r}: choose one of {', '.join(DIFFUSION_NETWORKS)}")
    diffusion["network"] = {**DIFFUSION_NETWORKS[diffusion["preset"]], **diffusion["network"]}
    evaluation = asdict(_config(EvalSettings, {"lpips_weights": options.lpips_weights, **settings["evaluation"],
                                               "layout": options.layout}, "evaluation"))
    if options.eval_data is None:
        evaluation["cases"] = "the cases both trainers held out for validation (known after training)"
    return _jsonable({"segmentation": seg, "diffusion": diffusion, "evaluation": evaluation})


def _shipped_heart_model_if_it_fits(kwargs: dict, log) -> "str | None":
    """The shipped heart model's folder when its network, pixel size and normalisation are this run's, else None."""
    from .bundle import read_metadata
    from .model_zoo import SEGMENTATION, resolve_model
    from .segmentation import intensity
    from .segmentation import network as seg_network
    from .segmentation.network import DEFAULT_SPACING_MM

    folder = resolve_model(None, SEGMENTATION)
    meta = read_metadata(folder)
    wanted = seg_network.network_def(kwargs.get("preset", seg_network.DEFAULT_PRESET), kwargs.get("channels"))
    spacing = float(kwargs.get("spacing_mm", DEFAULT_SPACING_MM))
    fits = (meta["network_def"] == wanted and abs(float(meta["scarenhance"]["input"]["spacing_mm"]) - spacing) < 1e-6
            and intensity.policy_of(meta) == intensity.DEFAULT)
    log(f"[segmentation] {'fine-tuning from' if fits else 'from scratch: the network differs from'} the shipped model {Path(folder).name}")
    return str(folder) if fits else None


def _shipped_diffusion_model_if_it_fits(values: dict) -> "str | None":
    """The shipped diffusion model's folder when this run builds the same network, else None."""
    from .bundle import read_metadata
    from .model_zoo import DIFFUSION, resolve_model

    folder = resolve_model(None, DIFFUSION)
    meta = read_metadata(folder)
    ours = meta["scarenhance"]
    fits = (ours.get("preset") == values.get("preset", "cpu-small") and not values.get("network")
            and ours.get("prediction", "epsilon") == values.get("prediction", "epsilon")
            # a model starts a run that adds an input (the ROI-normalised one, the myocardium; their weights start at
            # zero), never one that lacks an input the model takes
            and all(values.get(name, False) or not ours.get(name, False) for name in ("roi_normalised", "myocardium_input")))
    return str(folder) if fits else None


def _config(cls, values: dict, step: str):
    """cls(**values), with unknown keys named (they come from presets and --set)."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown {step} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {k: tuple(v) if isinstance(v, list) and k == "lam_sweep" else v for k, v in values.items()}
    return cls(**values)


# Arguments of a trainer that the pipeline itself passes (not settings).
_PIPELINE_ARGUMENTS = {"data", "out", "layout", "device", "resume", "command", "progress", "cancel", "log", "work_dir"}


def _keywords(function, values: dict, step: str) -> dict:
    """`values` checked against the keyword parameters of `function` (a trainer that takes no config class)."""
    import inspect

    known = set(inspect.signature(function).parameters) - _PIPELINE_ARGUMENTS
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown {step} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
