"""Training checkpoints: written atomically, read back with clear errors, found again on resume.

A checkpoint folder holds two files, each replaced in one `os.replace` so that a kill at any moment
leaves the previous complete file in place (never half a file):

    CHECKPOINT_DIR/
      latest.pt    everything needed to resume: model, optimizer, LR scheduler and AMP scaler states,
                   the last finished epoch, the best metric so far and the per-epoch history
      best.pt      the model weights (state_dict) of the best validation epoch, and that epoch's number

Both are plain dicts of tensors and Python numbers, so they load with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..bundle import atomic_torch_save
from ..errors import ModelError

LATEST = "latest.pt"
BEST = "best.pt"
FORMAT = 1  # bump when the layout of the dict changes


@dataclass
class ResumeState:
    """What `load_checkpoint` gives back besides restoring the objects in place."""

    epoch: int  # last finished epoch (0-based); training resumes at epoch + 1
    best_metric: "float | None"
    best_epoch: "int | None"
    history: list = field(default_factory=list)  # one dict per finished epoch
    extra: dict = field(default_factory=dict)


def state_dict_cpu(model: torch.nn.Module) -> dict:
    """A detached CPU copy of a model's weights (unwrapping DistributedDataParallel)."""
    module = getattr(model, "module", model)
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def save_checkpoint(
    directory: "str | Path",
    *,
    model: torch.nn.Module,
    optimizer: "torch.optim.Optimizer | None",
    epoch: int,
    best_metric: "float | None" = None,
    best_epoch: "int | None" = None,
    history: "list | None" = None,
    scheduler: Any = None,
    scaler: Any = None,
    extra: "dict | None" = None,
) -> Path:
    """Write DIRECTORY/latest.pt atomically and return its path."""
    state = {
        "format": FORMAT,
        "epoch": int(epoch),
        "best_metric": None if best_metric is None else float(best_metric),
        "best_epoch": best_epoch,
        "history": list(history or []),
        "model": state_dict_cpu(model),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "extra": dict(extra or {}),
    }
    path = Path(directory) / LATEST
    atomic_torch_save(state, path)
    return path


def save_best(directory: "str | Path", weights: dict, epoch: int, metric: float) -> Path:
    """Write DIRECTORY/best.pt (weights of the best epoch) atomically."""
    path = Path(directory) / BEST
    atomic_torch_save({"format": FORMAT, "epoch": int(epoch), "metric": float(metric), "model": weights}, path)
    return path


def read_checkpoint(path: "str | Path") -> dict:
    """The raw dict of a checkpoint file; a truncated or foreign file is a ModelError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("checkpoint file not found", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated zips / pickles
        raise ModelError(f"checkpoint is unreadable (truncated or not a torch file: {e})", path) from e
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise ModelError(f"not a ScarEnhance training checkpoint (format {FORMAT} expected)", path)
    return state


def load_checkpoint(
    path: "str | Path",
    *,
    model: torch.nn.Module,
    optimizer: "torch.optim.Optimizer | None" = None,
    scheduler: Any = None,
    scaler: Any = None,
) -> ResumeState:
    """Restore model/optimizer/scheduler/scaler in place from latest.pt; return epoch, best, history."""
    state = read_checkpoint(path)
    module = getattr(model, "module", model)
    try:
        module.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ModelError(f"checkpoint does not fit this network (different preset or channels?): {e}", path) from e
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    return ResumeState(
        epoch=int(state["epoch"]),
        best_metric=state.get("best_metric"),
        best_epoch=state.get("best_epoch"),
        history=list(state.get("history") or []),
        extra=dict(state.get("extra") or {}),
    )


def latest_checkpoint(directory: "str | Path") -> "Path | None":
    """DIRECTORY/latest.pt if it exists (temporary files of an interrupted write are ignored)."""
    path = Path(directory) / LATEST
    return path if path.is_file() else None


def load_best_weights(directory: "str | Path") -> "tuple[dict, int, float] | None":
    """(weights, epoch, metric) from DIRECTORY/best.pt, or None when no epoch was validated yet."""
    path = Path(directory) / BEST
    if not path.is_file():
        return None
    state = read_checkpoint(path)
    return state["model"], int(state["epoch"]), float(state["metric"])
