"""Train the heart U-Net on a labelled dataset and write a model folder (MONAI bundle layout).

    summary = train_segmentation("data/emidec", "models/site-seg", preset="cpu-small")

OUT/configs/*.json + OUT/models/model.pt are the model (the best validation-Dice epoch, rewritten
whenever a better epoch is found, so an interrupted run still leaves a usable model);
OUT/training/ holds latest.pt / best.pt (resume) and OUT/training/tensorboard/ the event files.
Loss: Dice + binary cross-entropy on logits (MONAI DiceCELoss, sigmoid applied inside once); Adam
with a cosine learning-rate decay; the validation metric is the per-case Dice of the heart ROI on
whole slices of held-out cases (split by case with a fixed seed).
Runs on one process or under torchrun (see training.distributed).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import InputError
from ..evaluation.metrics import dice
from ..progress import ProgressFn, no_progress, scaled
from . import network as N

MODEL_VERSION = "1.0.0"
INTENSITY_POLICY = "each 2D slice min-max scaled to [0, 255] (paper §2.1), then divided by 255: network input in [0, 1]"


def train_segmentation(
    data: "str | Path",
    out: "str | Path",
    *,
    preset: str = N.DEFAULT_PRESET,
    epochs: "int | None" = None,
    batch_size: "int | None" = None,
    lr: "float | None" = None,
    crop: "int | None" = None,
    channels: "tuple[int, ...] | None" = None,
    spacing_mm: float = N.DEFAULT_SPACING_MM,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    workers: int = 0,
    layout: str = "auto",
    steps_per_epoch: "int | None" = None,
    validate_every: "int | None" = None,
    work_dir: "str | Path | None" = None,
    command: "str | None" = None,
    progress: ProgressFn = no_progress,
    cancel: Optional[threading.Event] = None,
    log: "Callable[[str], None] | None" = None,
) -> dict:
    """Train and write the model folder `out`; returns a summary dict (also in the model's metadata).

    preset: "cpu-small" (default) or "gpu-paper"; epochs, batch_size, lr, crop, channels and
    validate_every (epochs between validations; the last epoch is always validated) override it.
    resume: continue the run in OUT/training; without it an existing model or run in OUT is an
    InputError (nothing is overwritten). Under torchrun, batch_size is per process.
    """
    import warnings

    from monai.losses import DiceCELoss

    from ..bundle import METADATA
    from ..training import FitConfig, cleanup, fit, init_distributed, make_loader, wrap_model
    from ..training.loop import stderr_log
    from .data import collate, load_cases, slice_dataset, split_cases, train_transforms
    from .infer import predict_slices

    log = log or stderr_log
    p = N.PRESETS.get(preset)
    if p is None:
        raise InputError(f"unknown preset {preset!r}: choose one of {', '.join(N.PRESETS)}")
    epochs = int(epochs or p["epochs"])
    batch_size = int(batch_size or p["batch_size"])
    lr = float(lr or p["lr"])
    crop = int(crop or p["crop"])
    validate_every = int(validate_every or p["validate_every"])
    if epochs < 1 or batch_size < 1 or lr <= 0 or spacing_mm <= 0:
        raise InputError("epochs, batch size, learning rate and spacing must be positive")
    if crop % 16:
        raise InputError(f"the crop size must be a multiple of 16, got {crop}")
    out = Path(out)
    work = Path(work_dir) if work_dir is not None else out / "training"
    if not resume and ((out / METADATA).exists() or (work / "latest.pt").exists()):
        raise InputError("already holds a model or a training run: pass --resume to continue it, or choose another --out", out)

    ctx = init_distributed(device)
    try:
        torch.manual_seed(seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
        net_def = N.network_def(preset, channels)
        model = wrap_model(N.build(net_def), ctx)

        cases = load_cases(data, spacing_mm, layout, multiple_of=N.multiple_of(net_def), progress=scaled(progress, 0.0, 0.05))
        train_cases, val_cases = split_cases(cases, val_fraction, seed)
        if ctx.is_main:
            log(f"train-seg: {len(train_cases)} training cases ({sum(len(c.images) for c in train_cases)} slices), "
                f"{len(val_cases)} validation cases, {spacing_mm} mm pixels, preset {preset}, device {ctx.device}"
                + (f", {ctx.world_size} processes" if ctx.is_distributed else ""))

        # slices beyond the apex have no heart: the pos/neg crop falls back to background crops, as intended
        warnings.filterwarnings("ignore", message="Num foregrounds 0")
        transform = train_transforms(crop)
        transform.set_random_state(seed + 1000 * ctx.rank)  # different augmentations per rank
        dataset = slice_dataset(train_cases, transform)
        # drop a last partial batch (BatchNorm dislikes a batch of one) unless that is all there is
        loader = make_loader(dataset, ctx, batch_size=batch_size, shuffle=True, seed=seed, num_workers=workers,
                             drop_last=len(dataset) > batch_size * ctx.world_size, collate_fn=collate)
        if len(loader) == 0:
            raise InputError(f"fewer training slices than one batch of {batch_size}: lower --batch-size", data)

        loss_fn = DiceCELoss(sigmoid=True, batch=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=lr * 0.02)

        def train_step(m, batch):
            return loss_fn(m(batch["image"]).float(), batch["label"])  # the loss in fp32 under autocast

        my_val = val_cases[ctx.rank::ctx.world_size]

        def validate(m):
            scores = [dice(predict_slices(m, c.images, batch_size=8, device=ctx.device) > 0.5, c.masks) for c in my_val]
            return (float(np.mean(scores)) if scores else 0.0, float(len(scores)))

        def metadata(val_dice, best_epoch, history, seconds=None):
            return _metadata(net_def, preset, spacing_mm, crop, batch_size, lr, epochs, seed, val_fraction, train_cases,
                             val_cases, val_dice, best_epoch, history, command, data, seconds)

        def write_model(weights, val_dice, best_epoch, history, seconds=None):
            net = N.build(net_def)
            net.load_state_dict(weights)
            from ..bundle import save_bundle

            save_bundle(out, net, net_def, metadata(val_dice, best_epoch, history, seconds))

        t0 = time.perf_counter()
        result = fit(
            model, optimizer, loader, train_step, validate if val_cases else None,
            config=FitConfig(epochs=epochs, checkpoint_dir=work, log_dir=work / "tensorboard", metric_name="val_dice",
                             resume=resume, max_steps_per_epoch=steps_per_epoch, validate_every=validate_every,
                             desc="train-seg"),
            ctx=ctx, scheduler=scheduler, progress=scaled(progress, 0.05, 1.0), cancel=cancel, log=log,
            on_best=lambda epoch, metric, weights: write_model(weights, metric, epoch, []),
        )
        seconds = time.perf_counter() - t0
        summary = {"model": str(out), "val_dice": result.best_metric, "best_epoch": None if result.best_epoch is None else result.best_epoch + 1,
                   "epochs": result.epochs_done, "train_cases": len(train_cases), "val_cases": len(val_cases),
                   "seconds_this_run": round(seconds, 1)}
        if ctx.is_main:
            write_model(result.best_weights, result.best_metric, result.best_epoch, result.history, seconds)
            (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            log(f"train-seg: wrote {out} (best validation Dice {_fmt(result.best_metric)} at epoch {summary['best_epoch']})")
        return summary
    finally:
        cleanup(ctx)


def _metadata(net_def, preset, spacing_mm, crop, batch_size, lr, epochs, seed, val_fraction, train_cases, val_cases,
              val_dice, best_epoch, history, command, data, seconds) -> dict:
    from .. import __version__

    return {
        "version": MODEL_VERSION,
        "name": "ScarEnhance heart ROI segmentation",
        "task": "2D heart ROI segmentation (LV blood pool + myocardium + scar) of short-axis LGE MRI slices",
        "description": "MONAI UNet, one input channel, one sigmoid output; run on whole slices resampled to the input spacing",
        "authors": "ScarEnhance",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "num_channels": 1, "spatial_shape": ["16*n", "16*n"],
                                 "dtype": "float32", "value_range": [0, 1], "is_patch_data": False}},
            "outputs": {"pred": {"type": "image", "format": "logits", "num_channels": 1, "spatial_shape": ["16*n", "16*n"],
                                 "dtype": "float32", "value_range": [], "is_patch_data": False}},
        },
        "scarenhance": {
            "kind": "heart-segmentation",
            "engine_version": __version__,
            "preset": preset,
            "input": {"spacing_mm": spacing_mm, "multiple_of": N.multiple_of(net_def), "intensity": INTENSITY_POLICY,
                      "whole_slice": True, "training_crop": crop},
            "output": {"activation": "sigmoid", "threshold": 0.5,
                       "postprocess": "largest 3D component, holes filled per slice, optional in-plane dilation (mm)"},
            "training": {"command": command, "data": str(data), "epochs": epochs, "batch_size": batch_size, "lr": lr,
                         "optimizer": "Adam, cosine decay", "loss": "DiceCELoss(sigmoid=True, batch=True)", "seed": seed,
                         "val_fraction": val_fraction, "train_cases": len(train_cases),
                         "val_case_names": [c.name for c in val_cases], "seconds": None if seconds is None else round(seconds, 1),
                         "history": history},
            "validation": {"dice": val_dice, "best_epoch": None if best_epoch is None else best_epoch + 1,
                           "cases": len(val_cases), "metric": "mean per-case Dice of the heart ROI at the input spacing"},
        },
    }


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
