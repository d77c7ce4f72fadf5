"""enhance_scar: an LGE volume and a heart ROI in, the enhanced volume (what its k samples agree on)
and their SD out.

    volume ──volume_to_slices (native pixels)──▶ slices in [0, 255] ──▶ crops around the ROI in [-1, 1]
        ──partial diffusion, k samples per crop──▶ mean (what the samples agree on, agreement.py) and SD
        ──▶ pasted into the ROI only
        ──▶ the input's geometry and intensity scale; voxels outside the ROI copied from the input.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk
import torch

from ..device import resolve_device
from ..errors import InputError, ModelError
from ..geometry import labels_to_slices, scale_to_volume, slices_to_volume, volume_to_slices
from ..progress import ProgressFn, check_cancel, no_progress, scaled
from .agreement import DEFAULT_AGREEMENT, agreed_mean
from .crops import extract_crops, paste_crops, plan_crops
from .inputs import check_image, check_parameters, roi_on_image_grid
from .sampler import sample
from .schedule import make_schedule

DEFAULT_MARGIN = 16  # pixels of context around the ROI's bounding box that the network sees


def load_diffusion_model(path: "str | Path | None" = None, device: "str | torch.device" = "cpu") -> torch.nn.Module:
    """The denoiser of a model folder (a path, a registry id, or None for the shipped default), in eval
    mode, with `.metadata` (the bundle's metadata.json) and `.model_dir` attached.
    forward(x: (B, 2, H, W) in [-1, 1], t: (B,) indices 0 … T−1) -> ε̂ (B, 1, H, W)."""
    from ..bundle import load_bundle
    from ..model_zoo import DIFFUSION, resolve_model

    folder = resolve_model(path, DIFFUSION)
    network, meta = load_bundle(folder, kind=DIFFUSION, device=device)
    network.metadata = meta
    network.model_dir = Path(folder)
    return network


def enhance_scar(
    image: sitk.Image,
    roi: sitk.Image,
    model: "torch.nn.Module | str | Path | None" = None,
    lam: int = 250,
    k: int = 5,
    steps: "int | None" = None,
    seed: "int | None" = None,
    device: "str | torch.device" = "auto",
    progress: Optional[ProgressFn] = None,
    cancel: Optional[threading.Event] = None,
    margin: int = DEFAULT_MARGIN,
    eta: float = 0.0,
    chunk_size: "int | None" = None,
    fp32: bool = False,
    min_window: int = 0,
    myocardium: "np.ndarray | None" = None,
    agreement: float = DEFAULT_AGREEMENT,
) -> tuple[sitk.Image, sitk.Image]:
    """Enhance the scar inside `roi` (any non-zero voxel; resampled nearest-neighbour if on another grid).

    lam: partial-diffusion step λ (1 … 1000). k: samples averaged. steps: None for the paper's full
    ancestral chain of λ steps, or N ≤ λ for the fast DDIM chain (eta: its noise weight, 0 = deterministic
    after the first noise). seed: same seed → same output on the CPU; None draws one (reported through
    `progress`). cancel: a threading.Event checked at every reverse step (raises Cancelled).
    fp32: the network in fp32 also where the device runs it faster in bf16/fp16 (CUDA, AMX CPUs; the
    difference is measured by benchmarks/bench_enhance.py).
    min_window: windows at least this many pixels a side, besides the model's own floor (training_windows):
    for measuring how much the surroundings in the window change the result (benchmarks/enh_families.py).
    myocardium: boolean (z, y, x) LV myocardium on the image's grid (scar included, as a reader draws the
    wall), for a model that takes it (`myocardium_input` in its metadata); a slice without any is "unknown"
    to the model, as is every slice when it is None. Models without that input ignore it.
    agreement: each voxel's mean change is shrunk toward zero by this many standard errors of the k samples,
    so that what only some samples do is held back (agreement.py; 0 = the paper's plain mean; no effect
    when k = 1).

    Returns (mean, std) in the image's exact geometry and intensity scale, of the pixel type
    `output_dtype` picks so that mean equals the input bit for bit outside the ROI (float32 for the usual
    16-bit LGE); std is the per-voxel standard deviation over the k samples (population SD, 0 outside
    the ROI and when k = 1), float32 or float64.
    """
    progress = progress or no_progress
    net = model if isinstance(model, torch.nn.Module) else load_diffusion_model(model)
    schedule = make_schedule()
    check_parameters(lam, k, steps, seed, schedule.num_train_timesteps, agreement)
    original = check_image(image)
    inside = roi_on_image_grid(roi, image)
    torch_device = resolve_device(device) if not isinstance(device, torch.device) else device
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little") >> 1
    _warn_beyond_training(net, lam)
    if isinstance(min_window, bool) or not isinstance(min_window, int) or not 0 <= min_window <= MAX_WINDOW:
        raise InputError(f"min_window must be an integer from 0 to {MAX_WINDOW} px, got {min_window!r}")
    check_cancel(cancel)

    stack = volume_to_slices(image)  # native pixels: nothing is interpolated
    roi_img = sitk.GetImageFromArray(inside.astype(np.uint8))
    roi_img.CopyInformation(image)
    roi_slices = labels_to_slices(roi_img, stack).astype(bool)
    smallest, largest = training_windows(net)
    smallest = max(smallest, min_window)
    plan = plan_crops(roi_slices, margin=margin, multiple_of=getattr(net, "multiple_of", 1), min_size=smallest,
                      max_size=max(largest, smallest) if largest else 0)
    x0 = extract_crops(stack.slices / 127.5 - 1.0, plan, fill=-1.0)
    m = extract_crops(roi_slices.astype(np.float32), plan, fill=0.0)
    given = _myocardium_crops(net, myocardium, image, stack, plan, progress)
    mode = f"{steps} DDIM steps" if steps is not None else f"{lam} DDPM steps"
    progress(0.01, f"enhancing {len(set(plan.slice_indices.tolist()))} slices in {len(plan)} windows of "
                   f"{plan.size[0]}×{plan.size[1]} px, λ={lam}, k={k}, "
                   f"{mode}, seed {seed}, agreement {agreement:g} SE, on {torch_device}")

    samples = sample(net, x0, m, schedule, lam=lam, k=k, steps=steps, seed=seed, slice_ids=plan.seed_ids,
                     device=torch_device, eta=eta, chunk_size=chunk_size, progress=scaled(progress, 0.01, 0.98),
                     cancel=cancel, fp32=fp32, myocardium=given)
    mean255 = (agreed_mean(samples, x0, agreement) + 1.0) * 127.5
    std255 = samples.std(axis=0).astype(np.float64) * 127.5

    out_dtype = output_dtype(original)
    mean_full = paste_crops(stack.slices.astype(np.float64), mean255, plan, mask=roi_slices)
    enhanced = sitk.GetArrayFromImage(slices_to_volume(stack, mean_full, dtype=out_dtype))
    result = original.astype(out_dtype)  # exact copy of the input outside the ROI: out_dtype holds every value
    result[inside] = enhanced[inside]
    std_full = paste_crops(np.zeros(stack.slices.shape), std255, plan, mask=roi_slices)
    spread = sitk.GetArrayFromImage(scale_to_volume(stack, std_full)).astype(np.float32 if out_dtype == np.float32 else np.float64)
    spread[~inside] = 0
    progress(1.0, "enhancement done")
    return _like(result, image), _like(spread, image)


def _myocardium_crops(net, myocardium, image, stack, plan, progress) -> "np.ndarray | None":
    """The myocardium input's crops (myocardium_input.encode per slice; a slice without myocardium is
    unknown), or None when the model takes no such input or none is given."""
    if myocardium is None:
        return None
    mask = np.asarray(myocardium)
    if mask.shape != tuple(reversed(image.GetSize())):
        raise InputError(f"the myocardium mask has shape {mask.shape}, the image {tuple(reversed(image.GetSize()))} "
                         "(z, y, x): give it on the image's grid")
    if not getattr(net, "myocardium_input", False):
        progress(0.0, "this model takes no myocardium input: enhancing from the ROI alone")
        return None
    from .myocardium_input import UNKNOWN, encode

    walls = np.transpose(mask.astype(bool), stack.axes)
    encoded = np.stack([encode(wall, wall.shape) for wall in walls])
    crops = extract_crops(encoded, plan, fill=-1.0)
    unknown = ~walls.any(axis=(1, 2))
    crops[unknown[plan.slice_indices]] = UNKNOWN  # beyond the slice too: nothing is known there
    progress(0.0, f"myocardium given on {int((~unknown).sum())} of {len(walls)} slices")
    return crops


def output_dtype(values: np.ndarray) -> np.dtype:
    """The enhanced volume's pixel type: the smallest that holds every input value exactly.

    float32 for float32 input and integers within ±2**24 (8- and 16-bit LGE, most int32); float64 for
    float64 input and integers within ±2**53 (int32/uint32 above 2**24); beyond that (int64/uint64) the
    input's own integer type, with the enhanced voxels rounded to it.
    """
    if np.issubdtype(values.dtype, np.floating):
        return np.dtype(np.float32) if values.dtype.itemsize <= 4 else np.dtype(np.float64)
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if -(1 << 24) <= lo and hi <= 1 << 24:
        return np.dtype(np.float32)
    if -(1 << 53) <= lo and hi <= 1 << 53:
        return np.dtype(np.float64)
    return values.dtype


def _like(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(reference)
    return out


MAX_WINDOW = 2048  # px; a model folder is data, and a window is memory


def training_windows(net: torch.nn.Module) -> tuple[int, int]:
    """The smallest and largest sides of the crops the model was trained on ((0, 0) if unknown): the bounds
    of its windows here.

    The network's group norms and attention see the whole window, so its output depends on how much of the
    surroundings the window holds (README: "The inference window"). A window smaller than the training
    crops (the ROI's box plus the margin, for a small heart) shifted the 0.5.0 model's output by several
    per cent on some families, and a larger one (a large heart in fine pixels) more: on the real-LGE-like
    family its remote myocardium rose from +4.4 % in 128-px windows to +6.5 % in 144-px ones, and its gain
    on synth-unseen fell from +45 % to −18 % in 160-px ones. Larger ROIs are therefore covered by
    several windows of the largest trained side (crops.plan_crops).

    Keys: `scarenhance.train_crop_px` (the smallest side; else `scarenhance.training.config.crop_size`) and
    `scarenhance.train_crop_max_px` (models trained on several sides, `train-diffusion --crop-min`; else
    the smallest).
    """
    meta = (getattr(net, "metadata", None) or {}).get("scarenhance", {})
    smallest = meta.get("train_crop_px", meta.get("training", {}).get("config", {}).get("crop_size", 0))
    largest = meta.get("train_crop_max_px", smallest)
    for key, value in (("train_crop_px", smallest), ("train_crop_max_px", largest)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WINDOW:
            raise ModelError(f"the training crop it records (key 'scarenhance.{key}'"
                             f"{', else scarenhance.training.config.crop_size' if key == 'train_crop_px' else ''}) must be "
                             f"an integer from 0 to {MAX_WINDOW}, got {value!r}", getattr(net, "model_dir", None))
    if largest < smallest:
        raise ModelError(f"its largest training crop ('scarenhance.train_crop_max_px', {largest}) is smaller than the "
                         f"smallest ('scarenhance.train_crop_px', {smallest})", getattr(net, "model_dir", None))
    return smallest, largest


def _warn_beyond_training(net: torch.nn.Module, lam: int) -> None:
    """Models trained on t ≤ t_max (the small CPU model) have never seen noisier inputs than t_max."""
    meta = getattr(net, "metadata", None) or {}
    t_max = meta.get("scarenhance", {}).get("train_t_max")
    if t_max is not None and lam > int(t_max):
        warnings.warn(f"lambda = {lam} is beyond the largest step this model was trained on ({t_max}); "
                      "its output there is unreliable", stacklevel=3)
