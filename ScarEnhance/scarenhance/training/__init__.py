"""Training machinery shared by the heart-segmentation and the diffusion trainers.

- `loop.fit` / `FitConfig` / `FitResult`: the epoch loop (AMP, tqdm, TensorBoard, keep-best, resume).
- `checkpoint`: atomic latest.pt / best.pt and their loading with clear errors.
- `distributed`: torchrun / DistributedDataParallel helpers that degrade to one process.
- `workers`: a random stream of its own for every DataLoader worker (make_loader installs it).
"""

from .checkpoint import ResumeState, latest_checkpoint, load_checkpoint, save_checkpoint
from .distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup,
    init_distributed,
    make_loader,
    unwrap,
    wrap_model,
)
from .loop import FitConfig, FitResult, autocast, fit, to_device

__all__ = [
    "DistributedContext", "FitConfig", "FitResult", "ResumeState", "all_reduce_mean", "autocast", "barrier",
    "broadcast_object", "cleanup", "fit", "init_distributed", "latest_checkpoint", "load_checkpoint",
    "make_loader", "save_checkpoint", "to_device", "unwrap", "wrap_model",
]
