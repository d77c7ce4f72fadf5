"""Partial diffusion inside the ROI (paper §2.3): noise x_0 to step λ, run the reverse chain to 0, k times.

Two chains share one code path:
- ancestral DDPM over every index λ−1 … 0 (λ network calls; the paper's sampler), or
- `steps=N`: a DDIM chain over N indices from λ−1 down to 0 (N network calls; the fast mode).

At every step the pixels outside the ROI are reset to their known forward value √ᾱ·x_0 (they never
carry noise), so the network always sees a clean context, exactly as in training.

All k repeats of all crops are one list of items run in chunks through the network. Each item owns a
random generator seeded from SeedSequence([seed, repeat, slice id]): every (seed, repeat, slice) has a
stream of its own (no two seeds share one), results do not depend on the chunk size, and repeat r of a
run with seed S is repeat r of every run with seed S and more repeats: the k = 1 run is repeat 0, and
a run with k repeats is the first k repeats of a run with more.
"""

from __future__ import annotations

import math
import threading
from typing import Optional, Sequence

import numpy as np
import torch

from ..device import autocast_dtype
from ..errors import InputError
from ..progress import ProgressFn, check_cancel, no_progress
from .noise import add_localized_noise
from .schedule import Schedule

CPU_CHUNK = 32  # larger CPU batches are no faster per item, and smaller ones keep cancel responsive


def reverse_timesteps(lam: int, steps: "int | None", num_train_timesteps: int) -> list[int]:
    """Timestep indices of the reverse chain, descending, starting at λ−1 and ending at 0."""
    if not 1 <= lam <= num_train_timesteps:
        raise InputError(f"lambda must be between 1 and {num_train_timesteps}, got {lam}")
    if steps is None:
        return list(range(lam - 1, -1, -1))
    if not 1 <= steps <= lam:
        raise InputError(f"steps must be between 1 and lambda ({lam}), got {steps}")
    ts = np.unique(np.round(np.linspace(lam - 1, 0, steps)).astype(int))[::-1]
    return [int(t) for t in ts]


def item_generator(seed: int, repeat: int, slice_id: int) -> torch.Generator:
    """The generator of one item: an independent stream for every (seed, repeat, slice)."""
    state = np.random.SeedSequence([seed, repeat, slice_id]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def ddpm_step(y: torch.Tensor, eps: torch.Tensor, t: int, schedule: Schedule, z: "torch.Tensor | None") -> torch.Tensor:
    """One ancestral step t → t−1 (MONAI DDPMScheduler.step, fixed-small variance, x̂0 clipped to [-1, 1]).
    `z` is the step's standard normal noise (ignored at t = 0)."""
    a_t, a_prev = schedule.alpha_bar(t), schedule.alpha_bar(t - 1)
    beta = float(schedule.betas[t])
    x0_hat = ((y - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)).clamp(-1, 1)
    mean = (math.sqrt(a_prev) * beta / (1 - a_t)) * x0_hat + (math.sqrt(float(schedule.alphas[t])) * (1 - a_prev) / (1 - a_t)) * y
    if t == 0:
        return mean
    variance = max((1 - a_prev) / (1 - a_t) * beta, 1e-20)
    return mean + math.sqrt(variance) * z


def ddim_step(y: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, schedule: Schedule, eta: float, z: "torch.Tensor | None") -> torch.Tensor:
    """One DDIM step t → t_prev (t_prev = −1 means the clean image), as MONAI DDIMScheduler.step."""
    a_t, a_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    x0_hat = ((y - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)).clamp(-1, 1)
    sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
    out = math.sqrt(a_prev) * x0_hat + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
    if eta > 0:
        out = out + sigma * z
    return out


def default_chunk_size(device: torch.device, n_items: int, size: tuple[int, int], width: int) -> int:
    """Items per network batch: on CUDA from free memory (a generous per-item estimate; OOM halves it
    anyway), on the CPU a fixed batch."""
    if device.type != "cuda":
        return max(1, min(n_items, CPU_CHUNK))
    free, _ = torch.cuda.mem_get_info(device)
    per_item = 48 * width * size[0] * size[1] * 4  # ~48 feature maps of the first level's width, fp32
    return max(1, min(n_items, int(0.6 * free // per_item)))


def sample(
    model: torch.nn.Module,
    x0: np.ndarray,
    mask: np.ndarray,
    schedule: Schedule,
    lam: int = 250,
    k: int = 5,
    steps: "int | None" = None,
    seed: int = 0,
    slice_ids: "Sequence[int] | None" = None,
    device: "str | torch.device" = "cpu",
    eta: float = 0.0,
    chunk_size: "int | None" = None,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[threading.Event] = None,
    fp32: bool = False,
    myocardium: "np.ndarray | None" = None,
) -> np.ndarray:
    """k enhanced samples of each crop.

    x0: (M, h, w) float originals in [-1, 1]; mask: (M, h, w) ROI in {0, 1}; h, w multiples of the
    network's downsampling factor. slice_ids: (M,) ids used to seed each crop's noise (default 0…M−1).
    Returns (k, M, h, w) float32 in [-1, 1]; outside the ROI each sample equals x0.
    fp32: run the network in fp32 even where the device has a faster autocast dtype (device.autocast_dtype).
    myocardium: (M, h, w) the myocardium input of a network that takes one (myocardium_input.encode); None:
    unknown. A network without that input is never given it.
    """
    if k < 1:
        raise InputError(f"k (number of repeats) must be at least 1, got {k}")
    if seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed}")
    timesteps = reverse_timesteps(lam, steps, schedule.num_train_timesteps)
    ancestral = steps is None
    progress = progress or no_progress
    device = torch.device(device)
    x0_t = torch.as_tensor(np.asarray(x0, dtype=np.float32))[:, None]
    m_t = torch.as_tensor(np.asarray(mask, dtype=np.float32))[:, None]
    given_t = None
    if getattr(model, "myocardium_input", False):
        from .myocardium_input import UNKNOWN

        given = np.full(np.shape(x0), UNKNOWN, np.float32) if myocardium is None else np.asarray(myocardium, np.float32)
        given_t = torch.as_tensor(given)[:, None]
    n_crops = x0_t.shape[0]
    slice_ids = list(range(n_crops)) if slice_ids is None else [int(s) for s in slice_ids]
    items = [(j, r) for r in range(k) for j in range(n_crops)]
    width = int(getattr(model, "config", {}).get("channels", (64,))[0])
    chunk = chunk_size or default_chunk_size(device, len(items), tuple(x0_t.shape[-2:]), width)
    out = torch.empty((k, n_crops) + tuple(x0_t.shape[-2:]), dtype=torch.float32)

    done = 0
    while done < len(items):
        batch = items[done : done + chunk]
        try:
            result = _run_chain(model, x0_t, m_t, given_t, batch, slice_ids, seed, timesteps, ancestral, eta, schedule,
                                device, progress, cancel, done, len(items), fp32)
        except torch.cuda.OutOfMemoryError:
            # Items are seeded one by one, so retrying a chunk in smaller pieces gives the same result.
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if chunk > 1:
                chunk //= 2
                progress(done / len(items), f"out of memory: retrying with batches of {chunk}")
            elif device.type == "cuda":
                device = torch.device("cpu")
                chunk = default_chunk_size(device, len(items), tuple(x0_t.shape[-2:]), width)
                progress(done / len(items), "GPU out of memory even for one sample: continuing on the CPU (slower)")
            else:
                raise
            continue
        for (j, r), y in zip(batch, result):
            out[r, j] = y[0]
        done += len(batch)
    return out.numpy()


def _run_chain(model, x0_all, m_all, given_all, batch, slice_ids, seed, timesteps, ancestral, eta, schedule, device,
               progress, cancel, items_before, n_items, fp32) -> torch.Tensor:
    """The whole reverse chain for one chunk of (crop j, repeat r) items; returns (B, 1, h, w) on the CPU."""
    gens = [item_generator(seed, r, slice_ids[j]) for j, r in batch]
    shape = tuple(x0_all.shape[1:])

    def noise() -> torch.Tensor:  # one standard normal field per item, from that item's own generator
        return torch.stack([torch.randn(shape, generator=g) for g in gens]).to(device)

    rows = torch.tensor([j for j, _ in batch])
    x0 = x0_all[rows].to(device)
    m = m_all[rows].to(device)
    given = [] if given_all is None else [given_all[rows].to(device)]  # the myocardium input, if the network takes one
    inside = m > 0.5
    model = model.to(device).eval()
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    dtype = None if fp32 else autocast_dtype(device)

    t0 = timesteps[0]
    y = add_localized_noise(x0, m, noise(), torch.full((len(batch),), t0, dtype=torch.long, device=device), schedule)
    n_steps = len(timesteps)
    with torch.inference_mode():
        for i, t in enumerate(timesteps):
            check_cancel(cancel)
            t_prev = timesteps[i + 1] if i + 1 < n_steps else -1
            net_in = torch.cat([y, x0, *given], dim=1)
            if cuda:
                net_in = net_in.contiguous(memory_format=torch.channels_last)
            t_batch = torch.full((len(batch),), t, dtype=torch.long, device=device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                eps = model(net_in, t_batch, m).float()
            if ancestral:
                y = ddpm_step(y, eps, t, schedule, noise() if t > 0 else None)
            else:
                y = ddim_step(y, eps, t, t_prev, schedule, eta, noise() if eta > 0 else None)
            # Outside the ROI the chain is known exactly: the scaled original, without noise.
            y = torch.where(inside, y, math.sqrt(schedule.alpha_bar(t_prev)) * x0)
            fraction = (items_before + len(batch) * (i + 1) / n_steps) / n_items
            progress(fraction, f"reverse step {i + 1}/{n_steps} of samples {items_before + 1}-{items_before + len(batch)} of {n_items}")
    return y.float().cpu()
