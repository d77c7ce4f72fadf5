"""Choosing the torch device and the precision that suits it."""

from __future__ import annotations

import torch

from .errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when available, else CPU. 'cuda' without a GPU is an error, not a silent CPU run."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but torch sees no CUDA GPU (use --device cpu or auto)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise InputError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def autocast_dtype(device: torch.device) -> "torch.dtype | None":
    """The autocast dtype of inference and training on `device`: bf16 where the GPU supports it, fp16 on older
    GPUs, bf16 on a CPU that computes it in hardware, else None (fp32). On 2 AMX cores bf16 makes a diffusion
    training step 2.1× and a heart-model step 1.6× faster (benchmarks/training_speed.py), and enhancement 2.3×
    (benchmarks/bench_enhance.py, which also gives the bf16 − fp32 difference). Weights, optimizer state and
    losses stay fp32 (torch.autocast)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware (AMX or AVX512-BF16)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu has no public probe
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def precision_name(dtype: "torch.dtype | None") -> str:
    """How a model record names an autocast dtype (None: fp32 throughout)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
