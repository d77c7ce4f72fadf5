"""The epoch loop both trainers use (heart segmentation and scar diffusion).

    result = fit(
        model, optimizer, train_loader,
        train_step=lambda model, batch: loss_fn(model(batch["image"]), batch["label"]),
        validate=lambda model: mean_dice(model, val_cases),     # higher is better by default
        config=FitConfig(epochs=100, checkpoint_dir=out / "training", log_dir=out / "training/tensorboard"),
        ctx=init_distributed("auto"),
        on_best=lambda epoch, metric, weights: write_model_folder(weights),
    )

The caller owns the model, the data and the loss; `fit` owns everything around them:
- batches moved to the device, ``train_step`` run under autocast (bf16/fp16 on CUDA, bf16 on CPUs with
  native bf16, else fp32: device.autocast_dtype),
  backward with a GradScaler when fp16, optional gradient clipping, optimizer and scheduler steps;
- a tqdm bar per epoch (on a terminal), one log line per epoch (loss, metric, best, lr, time),
  TensorBoard scalars, ``progress(fraction, message)`` callbacks and cancellation between steps;
- keep-best: the weights of the best validation epoch are kept (and written to best.pt);
- resume: DIR/latest.pt is written atomically after every epoch and picked up by the next run;
- DistributedDataParallel: sampler epochs, metrics averaged over ranks, files written by rank 0 only.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch

from ..device import autocast_dtype
from ..errors import InputError
from ..progress import ProgressFn, check_cancel, no_progress
from . import checkpoint as ckpt
from .distributed import DistributedContext, all_reduce_mean, barrier, unwrap

# train_step(model, batch) -> scalar loss tensor (batch already on the device; model may be DDP-wrapped)
TrainStep = Callable[[torch.nn.Module, Any], torch.Tensor]
# validate(model) -> metric, or (metric, weight) where weight = items averaged on this rank
Validate = Callable[[torch.nn.Module], "float | tuple[float, float]"]
# on_best(epoch, metric, weights) -- called on rank 0 whenever a new best epoch is found
OnBest = Callable[[int, float, dict], None]


@dataclass
class FitConfig:
    """How to run the loop. Paths may be None to skip checkpoints or TensorBoard."""

    epochs: int
    checkpoint_dir: "Path | str | None" = None
    log_dir: "Path | str | None" = None  # TensorBoard event files
    metric_name: str = "val_dice"
    maximize: bool = True  # False for a validation loss
    resume: bool = True  # True: continue from checkpoint_dir/latest.pt if present; False: refuse to overwrite it
    amp: bool = True  # mixed precision where the device has it (device.autocast_dtype)
    grad_clip: "float | None" = None  # max gradient norm
    validate_every: int = 1  # epochs between validations (the last epoch is always validated)
    max_steps_per_epoch: "int | None" = None
    desc: str = "train"  # name shown on the progress bar and in log lines
    progress_bar: bool = True
    # After a resume, set the optimizer's learning rate to this (continue a run with a new --lr, e.g. lower
    # for a final phase); None keeps the checkpoint's. Only without an LR scheduler, which owns the rate.
    resume_lr: "float | None" = None


@dataclass
class FitResult:
    best_metric: "float | None"
    best_epoch: "int | None"  # 0-based
    best_weights: "dict | None"  # CPU state_dict of the best epoch (the last epoch when there is no validation)
    history: list = field(default_factory=list)  # one dict per epoch: epoch, loss, metric, lr, time_s
    start_epoch: int = 0  # first epoch this call ran (> 0 after a resume)
    epochs_done: int = 0  # epochs finished in total, resumed ones included


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors anywhere inside dicts/lists/tuples moved to `device`; other values unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def autocast(device: torch.device, enabled: bool = True):
    """torch.autocast with the dtype that suits `device`; a no-op where that is fp32."""
    dtype = autocast_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def stderr_log(message: str) -> None:
    """Default log sink: a line on stderr that does not break a running tqdm bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable,
    train_step: TrainStep,
    validate: "Validate | None" = None,
    *,
    config: FitConfig,
    ctx: "DistributedContext | None" = None,
    scheduler: Any = None,
    on_best: "OnBest | None" = None,
    progress: ProgressFn = no_progress,
    cancel: Optional[threading.Event] = None,
    log: Callable[[str], None] = stderr_log,
) -> FitResult:
    """Train `model` for config.epochs epochs (minus those a resumed checkpoint already finished).

    model: already on ctx.device, DDP-wrapped when distributed (see distributed.wrap_model).
    scheduler: stepped once per epoch. Raises Cancelled when `cancel` is set (latest.pt stays valid),
    InputError when the checkpoint folder holds a run and config.resume is False, and a RuntimeError
    naming the epoch and step when the loss stops being finite.
    """
    ctx = ctx or DistributedContext(device=next(model.parameters()).device)
    device = ctx.device
    use_amp = config.amp and autocast_dtype(device) is not None
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and autocast_dtype(device) == torch.float16)
    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir is not None else None

    start_epoch, best_metric, best_epoch, best_weights, history = 0, None, None, None, []
    if ckpt_dir is not None and ckpt.latest_checkpoint(ckpt_dir) is not None:
        latest = ckpt.latest_checkpoint(ckpt_dir)
        if not config.resume:
            raise InputError("this folder already holds a training run: resume it (--resume) or choose another output", latest)
        state = ckpt.load_checkpoint(latest, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
        start_epoch, best_metric, best_epoch, history = state.epoch + 1, state.best_metric, state.best_epoch, state.history
        best = ckpt.load_best_weights(ckpt_dir)
        if best is not None:
            best_weights = best[0]
        if ctx.is_main:
            log(f"{config.desc}: resuming after epoch {state.epoch + 1}/{config.epochs} from {latest}")
        if config.resume_lr is not None and scheduler is None:
            previous = optimizer.param_groups[0]["lr"]
            for group in optimizer.param_groups:
                group["lr"] = config.resume_lr
            if ctx.is_main and previous != config.resume_lr:
                log(f"{config.desc}: learning rate {config.resume_lr:.2e} from now on (the checkpoint's was {previous:.2e})")

    writer = _tensorboard(config.log_dir) if ctx.is_main and config.log_dir is not None else None
    better = (lambda a, b: a > b) if config.maximize else (lambda a, b: a < b)
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            loss = _train_epoch(model, optimizer, train_loader, train_step, config, ctx, epoch, scaler, use_amp, progress, cancel)
            loss = all_reduce_mean(loss, ctx)
            if scheduler is not None:
                scheduler.step()

            metric = None
            is_last = epoch == config.epochs - 1
            if validate is not None and ((epoch + 1) % config.validate_every == 0 or is_last):
                metric = _validate(model, validate, ctx, use_amp)
            improved = metric is not None and math.isfinite(metric) and (best_metric is None or better(metric, best_metric))
            if improved or (validate is None and is_last):
                best_metric, best_epoch, best_weights = metric, epoch, ckpt.state_dict_cpu(model)
                if ctx.is_main:
                    if ckpt_dir is not None and metric is not None:
                        ckpt.save_best(ckpt_dir, best_weights, epoch, metric)
                    if on_best is not None:
                        on_best(epoch, metric, best_weights)

            seconds = time.perf_counter() - t0
            lr = optimizer.param_groups[0]["lr"]
            record = {"epoch": epoch, "loss": loss, config.metric_name: metric, "lr": lr, "time_s": round(seconds, 3)}
            history.append(record)
            if ctx.is_main:
                log(_epoch_line(config, epoch, loss, metric, best_metric, best_epoch, lr, seconds))
                if writer is not None:
                    writer.add_scalar(f"{config.desc}/loss", loss, epoch)
                    writer.add_scalar(f"{config.desc}/lr", lr, epoch)
                    writer.add_scalar(f"{config.desc}/epoch_seconds", seconds, epoch)
                    if metric is not None:
                        writer.add_scalar(f"{config.desc}/{config.metric_name}", metric, epoch)
                    writer.flush()
                if ckpt_dir is not None:
                    ckpt.save_checkpoint(
                        ckpt_dir, model=model, optimizer=optimizer, epoch=epoch, best_metric=best_metric,
                        best_epoch=best_epoch, history=history, scheduler=scheduler, scaler=scaler,
                    )
            barrier(ctx)  # no rank starts the next epoch (or reads latest.pt) before rank 0 wrote it
            progress((epoch + 1) / config.epochs, f"{config.desc}: epoch {epoch + 1}/{config.epochs} done")
    finally:
        if writer is not None:
            writer.close()
    if best_weights is None and history:  # validated never (or never finite): keep the last weights
        best_weights = ckpt.state_dict_cpu(model)
    return FitResult(best_metric, best_epoch, best_weights, history, start_epoch, len(history))


def _train_epoch(model, optimizer, loader, train_step, config, ctx, epoch, scaler, use_amp, progress, cancel) -> float:
    """One pass over `loader`; returns the mean loss of this rank."""
    from tqdm import tqdm

    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # a new shuffle per epoch, the same permutation on every rank
    try:
        steps = len(loader)
    except TypeError:
        steps = None
    if config.max_steps_per_epoch is not None:
        steps = config.max_steps_per_epoch if steps is None else min(steps, config.max_steps_per_epoch)
    show = config.progress_bar and ctx.is_main
    bar = tqdm(
        total=steps, desc=f"{config.desc} epoch {epoch + 1}/{config.epochs}", leave=False, file=sys.stderr,
        disable=None if show else True, dynamic_ncols=True, unit="batch",
    )
    model.train()
    total, count = 0.0, 0
    try:
        for step, batch in enumerate(loader):
            if steps is not None and step >= steps:
                break
            check_cancel(cancel)
            batch = to_device(batch, ctx.device)
            optimizer.zero_grad(set_to_none=True)
            with autocast(ctx.device, use_amp):
                loss = train_step(model, batch)
            if not torch.isfinite(loss.detach()):
                raise RuntimeError(
                    f"{config.desc}: the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                    "(lower the learning rate, or check the data for NaNs)"
                )
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            value = float(loss.detach())
            total, count = total + value, count + 1
            bar.update(1)
            bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
            if steps:
                progress((epoch + (step + 1) / steps) / config.epochs, f"{config.desc}: epoch {epoch + 1}/{config.epochs}")
    finally:
        bar.close()
    if count == 0:
        raise InputError(f"{config.desc}: the training loader yielded no batch (too few training cases for the batch size?)")
    return total / count


def _validate(model, validate, ctx, use_amp) -> float:
    """Run `validate` on the unwrapped model in eval mode; average over ranks."""
    module = unwrap(model)
    module.eval()
    try:
        with torch.inference_mode(), autocast(ctx.device, use_amp):
            out = validate(module)
    finally:
        module.train()
    value, weight = out if isinstance(out, tuple) else (out, 1.0)
    return all_reduce_mean(float(value), ctx, float(weight))


def _epoch_line(config, epoch, loss, metric, best_metric, best_epoch, lr, seconds) -> str:
    parts = [f"{config.desc} epoch {epoch + 1:>3}/{config.epochs}", f"loss {loss:.4f}"]
    if metric is not None:
        parts.append(f"{config.metric_name} {metric:.4f}")
    if best_metric is not None:
        parts.append(f"best {best_metric:.4f} @ {best_epoch + 1}")
    parts += [f"lr {lr:.2e}", f"{seconds:.1f} s"]
    return "  ".join(parts)


def _tensorboard(log_dir):
    """A SummaryWriter, or None with a note when tensorboard is not installed (training still runs)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a declared dependency, but a Slicer install may lack it
        stderr_log("tensorboard is not installed: no TensorBoard logs will be written")
        return None
    return SummaryWriter(log_dir=str(log_dir))
