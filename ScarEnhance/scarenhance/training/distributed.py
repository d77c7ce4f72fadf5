"""Multi-process training under ``torchrun`` (DistributedDataParallel), and the same code on one process.

    torchrun --nproc_per_node=4 -m scarenhance train-seg --data DIR --out MODEL_DIR
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --nproc_per_node=8 -m scarenhance train-diffusion ...

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `init_distributed` reads them
and joins the process group (NCCL on GPUs, gloo on CPU). Without them everything degrades to a
single process: `wrap_model` returns the model unchanged and `make_loader` uses a plain sampler, so
trainers need no ``if distributed`` branches of their own.

Rules kept here so every trainer follows them:
- each process owns one device (``cuda:LOCAL_RANK``) and sees a disjoint shard of the training set
  (`DistributedSampler`, reshuffled per epoch by the loop with ``set_epoch``);
- DDP broadcasts rank 0's initial weights and averages gradients, so weights stay identical on all ranks;
- metrics are averaged over ranks (`all_reduce_mean`) so every rank takes the same keep-best decision;
- only rank 0 writes logs, TensorBoard events, checkpoints and model folders (`ctx.is_main`).
"""

from __future__ import annotations

import datetime
import functools
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..device import resolve_device
from .workers import seed_worker


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: rank among world_size processes, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this context created the process group, so its `cleanup` ends it

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the one process that logs and writes files."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistributedContext:
    """Join the torchrun process group if there is one; otherwise a single-process context.

    device: "auto" | "cpu" | "cuda" as for `resolve_device`. Under torchrun with CUDA, each process
    takes ``cuda:LOCAL_RANK``. Calling it again while a group exists (a pipeline running several
    trainers) reuses that group, and the inner context's `cleanup` leaves it open for the caller.
    """
    base = resolve_device(device)
    if not launched_by_torchrun():
        return DistributedContext(device=base)
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if base.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            from ..errors import InputError

            raise InputError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s): "
                "use --nproc_per_node ≤ the number of GPUs"
            )
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = base
    created = not dist.is_initialized()
    if created:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, owns_group=created)


def cleanup(ctx: DistributedContext) -> None:
    """Leave the process group at the end of training, on every rank, if `ctx` created it.

    A group someone else opened (a pipeline around several trainers) stays open: destroying and
    re-creating one in a torchrun process can hang on the store's stale rendezvous keys.
    """
    if ctx.is_distributed and ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistributedContext) -> None:
    """Wait until every rank gets here (e.g. before reading a file that rank 0 just wrote)."""
    if ctx.is_distributed:
        dist.barrier()


def wrap_model(model: torch.nn.Module, ctx: DistributedContext) -> torch.nn.Module:
    """Move to ctx.device; wrap in DDP when distributed (rank 0's weights are broadcast to all)."""
    model = model.to(ctx.device)
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if ctx.device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[ctx.device.index], output_device=ctx.device.index)
    return DistributedDataParallel(model)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DDP wrapper (for saving weights and for validation)."""
    return getattr(model, "module", model)


def make_loader(
    dataset: Dataset,
    ctx: DistributedContext,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    collate_fn=None,
) -> DataLoader:
    """A DataLoader that shards `dataset` across ranks when distributed (batch_size is per rank).

    Shuffling is seeded (`seed`) so a run is reproducible; the loop calls ``sampler.set_epoch`` so the
    order changes each epoch and equals on every rank's view of the permutation. Worker processes get
    random streams of their own (training.workers), also derived from `seed`.
    """
    sampler = None
    if ctx.is_distributed:
        sampler = DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
    # the generator shuffles (one process) and draws the workers' base seed (always)
    generator = torch.Generator().manual_seed(seed)
    kwargs = {"collate_fn": collate_fn} if collate_fn is not None else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=functools.partial(seed_worker, rank=ctx.rank) if num_workers > 0 else None,
        pin_memory=ctx.device.type == "cuda",
        persistent_workers=num_workers > 0,
        **kwargs,
    )


def all_reduce_mean(value: float, ctx: DistributedContext, weight: float = 1.0) -> float:
    """Weighted mean of a Python number over all ranks (the same result on every rank).

    weight: how many items `value` averages on this rank (e.g. validation cases), so ranks with
    uneven shards count in proportion. Single process: `value` unchanged.
    """
    if not ctx.is_distributed:
        return float(value)
    backend_device = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    t = torch.tensor([float(value) * weight, float(weight)], dtype=torch.float64, device=backend_device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t[0] / t[1]) if float(t[1]) > 0 else float("nan")


def broadcast_object(obj, ctx: DistributedContext, src: int = 0):
    """Rank `src`'s Python object on every rank (e.g. a case split decided once)."""
    if not ctx.is_distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
