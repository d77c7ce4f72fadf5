"""Train the heart U-Net on randomized synthetic slices, a site's labelled cases, or both; write a model folder.

    summary = train_segmentation(None, "models/heart", synth=6000)                  # the shipped model's recipe
    summary = train_segmentation("data/emidec", "models/site", init_from="heart-seg")  # fine-tune on site data

OUT/configs/*.json + OUT/models/model.pt are the model (the best validation-Dice epoch, rewritten
whenever a better epoch is found, so an interrupted run still leaves a usable model);
OUT/training/ holds latest.pt / best.pt (resume) and OUT/training/tensorboard/ the event files.
Classes: background, LV blood pool, LV myocardium (scar included); loss: Dice + cross-entropy on the
softmax (MONAI DiceCELoss), plus `scar_weight` × the cross-entropy averaged over the scar pixels (bright
scar beside the bright blood pool is what a heart model most often calls blood); Adam with a cosine
learning-rate decay; the validation metric is the mean per case of the heart ROI's Dice (the union of
the two classes) and the myocardium's, on whole slices of held-out cases (split by case with a fixed
seed) or of a held-out synthetic bank (another seed).
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

from ..device import autocast_dtype, precision_name
from ..errors import InputError
from ..evaluation.metrics import dice
from ..labels import CLASS_MYOCARDIUM, TRAIN_SCAR, fold_scar
from ..progress import ProgressFn, no_progress, scaled
from . import intensity
from . import network as N

MODEL_VERSION = "2.0.0"
VALIDATION_METRIC = "mean per case of the heart ROI Dice (blood ∪ myocardium) and the myocardium Dice, at the model's pixel size"


def validation_score(predicted: np.ndarray, classes: np.ndarray) -> float:
    """The validation metric of one case: (heart ROI Dice + myocardium Dice) / 2. A model that calls scar
    blood pool loses only on the myocardium, so the ROI's Dice alone would not see it."""
    classes = fold_scar(classes)
    return 0.5 * (dice(predicted > 0, classes > 0) + dice(predicted == CLASS_MYOCARDIUM, classes == CLASS_MYOCARDIUM))


def heart_loss(dice_ce, logits, label, scar_weight: float = 0.0):
    """Dice + cross-entropy of the classes (scar folded into myocardium), plus scar_weight × the cross-entropy
    averaged over the scar pixels (labels.TRAIN_SCAR); a batch without scar adds nothing."""
    import torch.nn.functional as F

    target = fold_scar(label)
    loss = dice_ce(logits, target)
    if scar_weight:
        scar = (label[:, 0] == TRAIN_SCAR).to(logits.dtype)
        ce = F.cross_entropy(logits, target[:, 0], reduction="none")
        loss = loss + scar_weight * (ce * scar).sum() / scar.sum().clamp(min=1.0)
    return loss


def train_segmentation(
    data: "str | Path | None",
    out: "str | Path",
    *,
    synth: int = 0,
    synth_val: int = 256,
    synth_seed: int = 1,
    init_from: "str | Path | None" = None,
    scar_weight: float = 0.0,
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
    amp: bool = True,
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

    data: a labelled dataset folder, or None to train on synthetic slices only.
    synth: number of randomized synthetic slices (scarenhance.synth, bank seed `synth_seed`) to train on,
    alone or beside `data`; synth_val: synthetic slices (seed synth_seed + 1000) to validate on when
    `data` gives no validation cases.
    init_from: start from this heart model's weights (a folder or registry id, checksum-verified; the
    network and its pixel size and normalisation must match) instead of random ones.
    scar_weight: weight of the extra cross-entropy over scar pixels (labelled scar, counted as myocardium).
    preset: "cpu-small" (default) or "gpu-paper"; epochs, batch_size, lr, crop, channels and
    validate_every (epochs between validations; the last epoch is always validated) override it.
    resume: continue the run in OUT/training; without it an existing model or run in OUT is an
    InputError (nothing is overwritten). Under torchrun, batch_size is per process.
    amp: mixed precision where the device has it (CUDA; CPUs with AMX or AVX512-BF16); False: fp32.
    """
    import warnings

    from monai.losses import DiceCELoss

    from ..bundle import METADATA
    from ..training import FitConfig, cleanup, fit, init_distributed, make_loader, wrap_model
    from ..training.loop import stderr_log
    from .data import CropDataset, bank_cases, load_cases, slices_of, slices_of_bank, split_cases
    from .infer import predict_classes

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
    if data is None and synth < 1:
        raise InputError("nothing to train on: give a dataset folder, synthetic slices (--synth N), or both")
    if scar_weight < 0:
        raise InputError(f"the scar weight must be ≥ 0, got {scar_weight}")
    if synth < 0 or synth_val < 0:
        raise InputError("the numbers of synthetic slices must be ≥ 0")
    out = Path(out)
    work = Path(work_dir) if work_dir is not None else out / "training"
    if not resume and ((out / METADATA).exists() or (work / "latest.pt").exists()):
        raise InputError("already holds a model or a training run: pass --resume to continue it, or choose another --out", out)

    policy = dict(intensity.DEFAULT)
    ctx = init_distributed(device)
    try:
        torch.manual_seed(seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
        net_def = N.network_def(preset, channels)
        network = N.build(net_def)
        init = None
        if init_from is not None:
            init = _initial_weights(init_from, net_def, spacing_mm, policy)
            network.load_state_dict(init["weights"])
        model = wrap_model(network, ctx)

        images, classes, train_cases, val_cases = [], [], [], []
        if data is not None:
            cases = load_cases(data, spacing_mm, layout, multiple_of=N.multiple_of(net_def), policy=policy,
                               progress=scaled(progress, 0.0, 0.03))
            train_cases, val_cases = split_cases(cases, val_fraction, seed)
            images, classes = slices_of(train_cases)
        n_site = len(images)
        if synth:
            from ..synth import SynthRanges
            from ..synth.bank import make_bank

            ranges = SynthRanges(spacing_mm=spacing_mm)
            bank = make_bank(synth, synth_seed, ranges, progress=scaled(progress, 0.03, 0.08))
            more_images, more_classes = slices_of_bank(bank, policy)
            images, classes = images + more_images, classes + more_classes
            if not val_cases and synth_val:
                val_cases = bank_cases(make_bank(synth_val, synth_seed + 1000, ranges), policy, N.multiple_of(net_def))
        if ctx.is_main:
            log(f"train-seg: {n_site} site slices from {len(train_cases)} cases + {len(images) - n_site} synthetic slices, "
                f"{len(val_cases)} validation cases, {spacing_mm} mm pixels, preset {preset}, device {ctx.device}"
                + (f", initial weights from {init['source']}" if init else "")
                + (f", {ctx.world_size} processes" if ctx.is_distributed else ""))

        warnings.filterwarnings("ignore", message="Num foregrounds 0")
        dataset = CropDataset(images, classes, crop=crop, seed=seed + 1000 * ctx.rank)  # other crops per rank
        # drop a last partial batch (BatchNorm dislikes a batch of one) unless that is all there is
        loader = make_loader(dataset, ctx, batch_size=batch_size, shuffle=True, seed=seed, num_workers=workers,
                             drop_last=len(dataset) > batch_size * ctx.world_size)
        if len(loader) == 0:
            raise InputError(f"fewer training slices than one batch of {batch_size}: lower --batch-size", data)

        loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=lr * 0.02)

        def train_step(m, batch):
            return heart_loss(loss_fn, m(batch["image"]).float(), batch["label"], scar_weight)  # fp32 under autocast

        my_val = val_cases[ctx.rank::ctx.world_size]

        def validate(m):
            scores = [validation_score(predict_classes(m, c.images, batch_size=8, device=ctx.device), c.classes) for c in my_val]
            return (float(np.mean(scores)) if scores else 0.0, float(len(scores)))

        settings = {"preset": preset, "spacing_mm": spacing_mm, "crop": crop, "batch_size": batch_size, "lr": lr,
                    "epochs": epochs, "seed": seed, "val_fraction": val_fraction, "synth": synth, "synth_val": synth_val,
                    "synth_seed": synth_seed, "init_from": init and init["source"], "scar_weight": scar_weight, "steps_per_epoch": steps_per_epoch,
                    "validate_every": validate_every, "workers": workers,
                    "precision": precision_name(autocast_dtype(ctx.device) if amp else None)}

        def metadata(val_dice, best_epoch, history, seconds=None):
            return _metadata(net_def, settings, policy, train_cases, n_site, len(images) - n_site, val_cases, val_dice,
                             best_epoch, history, command, data, seconds, init)

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
                             desc="train-seg", amp=amp),
            ctx=ctx, scheduler=scheduler, progress=scaled(progress, 0.08, 1.0), cancel=cancel, log=log,
            on_best=lambda epoch, metric, weights: write_model(weights, metric, epoch, []),
        )
        seconds = time.perf_counter() - t0
        summary = {"model": str(out), "val_dice": result.best_metric, "best_epoch": None if result.best_epoch is None else result.best_epoch + 1,
                   "epochs": result.epochs_done, "train_cases": len(train_cases), "synthetic_slices": len(images) - n_site,
                   "val_cases": len(val_cases), "seconds_this_run": round(seconds, 1)}
        if ctx.is_main:
            write_model(result.best_weights, result.best_metric, result.best_epoch, result.history, seconds)
            (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            log(f"train-seg: wrote {out} (best validation Dice {_fmt(result.best_metric)} at epoch {summary['best_epoch']})")
        return summary
    finally:
        cleanup(ctx)


def _initial_weights(source, net_def: dict, spacing_mm: float, policy: dict) -> dict:
    """Weights of an existing heart model for fine-tuning; InputError when it cannot start this network."""
    from ..bundle import load_bundle
    from ..model_zoo import resolve_model
    from .infer import KIND

    folder = resolve_model(source, KIND)
    network, meta = load_bundle(folder, kind=KIND)
    inp = meta["scarenhance"]["input"]
    problems = []
    if meta["network_def"] != net_def:
        problems.append("its network differs from this run's (preset/--channels, or a single-output round-1 model)")
    if abs(float(inp["spacing_mm"]) - spacing_mm) > 1e-6:
        problems.append(f"it was trained at {inp['spacing_mm']} mm pixels, this run uses {spacing_mm}")
    if intensity.policy_of(meta) != policy:
        problems.append("it normalises intensities differently")
    if problems:
        raise InputError("cannot fine-tune from this model: " + "; ".join(problems), folder)
    return {"weights": network.state_dict(), "source": f"{meta.get('name', Path(folder).name)} {meta.get('version', '')}".strip(),
            "folder": str(folder), "weights_sha256": meta["scarenhance"]["weights_sha256"]}


def _metadata(net_def, settings, policy, train_cases, n_site, n_synth, val_cases, val_dice, best_epoch, history,
              command, data, seconds, init) -> dict:
    from .. import __version__

    classes = ["background", "LV blood pool", "LV myocardium"]
    return {
        "version": MODEL_VERSION,
        "name": "ScarEnhance heart segmentation",
        "task": "2D LV blood pool and LV myocardium segmentation of short-axis LGE MRI slices; heart ROI = their union",
        "description": "MONAI UNet, one input channel, softmax over background / LV blood pool / LV myocardium (scar included); "
                       "run on whole slices resampled to the input spacing",
        "authors": "ScarEnhance",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "num_channels": 1, "spatial_shape": ["16*n", "16*n"],
                                 "dtype": "float32", "value_range": [0, 1], "is_patch_data": False}},
            "outputs": {"pred": {"type": "image", "format": "logits", "num_channels": 3, "spatial_shape": ["16*n", "16*n"],
                                 "dtype": "float32", "value_range": [], "is_patch_data": False,
                                 "channel_def": {str(i): c for i, c in enumerate(classes)}}},
        },
        "scarenhance": {
            "kind": "heart-segmentation",
            "engine_version": __version__,
            "preset": settings["preset"],
            "input": {"spacing_mm": settings["spacing_mm"], "multiple_of": N.multiple_of(net_def), "normalisation": policy,
                      "intensity": "each slice min-max scaled to [0, 255] (paper §2.1), then the percentile normalisation "
                                   "recorded in `normalisation` (segmentation/intensity.py) to [0, 1]",
                      "whole_slice": True, "training_crop": settings["crop"]},
            "output": {"activation": "softmax", "classes": classes,
                       "postprocess": "argmax; heart ROI = blood ∪ myocardium; largest 3D component, holes filled per slice "
                                      "(as blood pool), optional in-plane dilation (mm) of the ROI only"},
            "training": {"command": command, "data": None if data is None else str(data),
                         "synthetic_slices": n_synth, "site_slices": n_site, "settings": settings,
                         "initialised_from": None if init is None else {k: init[k] for k in ("source", "weights_sha256")},
                         "optimizer": "Adam, cosine decay", "loss": "DiceCELoss(to_onehot_y=True, softmax=True, batch=True)"
                                 + (f" + {settings['scar_weight']} × cross-entropy over scar pixels" if settings["scar_weight"] else ""),
                         "train_cases": len(train_cases), "val_case_names": [c.name for c in val_cases][:50],
                         "seconds": None if seconds is None else round(seconds, 1), "history": history},
            "validation": {"dice": val_dice, "best_epoch": None if best_epoch is None else best_epoch + 1,
                           "cases": len(val_cases), "metric": VALIDATION_METRIC},
        },
    }


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
