"""LPIPS (Zhang et al., 2018) computed from a LOCAL weights file — never from a random or downloaded backbone.

LPIPS needs ImageNet-pretrained AlexNet or VGG16 features plus its own learned 1×1 "lin" layers. Neither can
be downloaded at run time here, so the user passes one file holding both, in either of these layouts:

* the state dict of the `lpips` package's model (`net.slice1.0.weight`, …, `lin0.model.1.weight`, …), made
  once on a connected machine with::

      import lpips, torch; torch.save(lpips.LPIPS(net="alex").state_dict(), "lpips_alex.pt")

* torchvision's `alexnet`/`vgg16` state dict (`features.0.weight`, …) merged with lpips' `weights/v0.1/alex.pth`
  (`lin0.model.1.weight`, …).

Without such a file `load_lpips` says why LPIPS is unavailable and the report prints "unavailable".
The feature networks are rebuilt here in plain torch (torchvision does not import beside this torch build).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..errors import InputError

# Layer layouts of torchvision's alexnet().features / vgg16().features and lpips' slice boundaries.
_ALEX = [("conv", 3, 64, 11, 4, 2), ("relu",), ("pool",), ("conv", 64, 192, 5, 1, 2), ("relu",), ("pool",),
         ("conv", 192, 384, 3, 1, 1), ("relu",), ("conv", 384, 256, 3, 1, 1), ("relu",), ("conv", 256, 256, 3, 1, 1), ("relu",)]
_ALEX_SLICES = [(0, 2), (2, 5), (5, 8), (8, 10), (10, 12)]


def _vgg16_layout() -> list:
    layers, c_in = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if v == "M":
            layers.append(("pool",))
        else:
            layers += [("conv", c_in, v, 3, 1, 1), ("relu",)]
            c_in = v
    return layers


_VGG = _vgg16_layout()
_VGG_SLICES = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]
NETS = {"alex": (_ALEX, _ALEX_SLICES, 3), "vgg": (_VGG, _VGG_SLICES, 2)}  # last: pool kernel (alex 3, vgg 2)
MIN_SIDE = 64  # AlexNet's stride-4 stem and pools need ≥ ~40 px; crops are upsampled to this
# lpips' ScalingLayer: ImageNet statistics in lpips' [-1, 1] input scale.
_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def _features(layout: list, pool_kernel: int) -> nn.Sequential:
    modules = []
    for spec in layout:
        if spec[0] == "conv":
            _, c_in, c_out, k, s, p = spec
            modules.append(nn.Conv2d(c_in, c_out, k, stride=s, padding=p))
        elif spec[0] == "relu":
            modules.append(nn.ReLU(inplace=False))
        else:
            modules.append(nn.MaxPool2d(pool_kernel, stride=2))
    return nn.Sequential(*modules)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance between two grayscale [0, 255] images; built only from a complete state dict."""

    def __init__(self, state: dict, source: "str | Path" = "<state dict>"):
        super().__init__()
        self.net_name, features, lins = _split_state(state, source)
        layout, self.slices, pool_kernel = NETS[self.net_name]
        self.features = _features(layout, pool_kernel)
        channels = [next(m.out_channels for m in reversed(self.features[:stop]) if isinstance(m, nn.Conv2d)) for _, stop in self.slices]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        try:
            self.features.load_state_dict(features, strict=True)
            self.lins.load_state_dict(lins, strict=True)
        except RuntimeError as e:
            raise InputError(f"LPIPS weights do not fit the {self.net_name} layout ({e})", source) from e
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B, 1, H, W) in [0, 255] → (B,) distances (0 for identical images)."""
        xa, xb = (self._prepare(x) for x in (a, b))
        total = torch.zeros(a.shape[0])
        for lin, (start, stop) in zip(self.lins, self.slices):
            xa, xb = self.features[start:stop](xa), self.features[start:stop](xb)
            diff = (_unit(xa) - _unit(xb)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS of two (H, W) [0, 255] arrays."""
        ta = torch.as_tensor(np.asarray(a, np.float32))[None, None]
        tb = torch.as_tensor(np.asarray(b, np.float32))[None, None]
        return float(self(ta, tb)[0])

    @staticmethod
    def _prepare(x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 127.5 - 1.0  # lpips expects [-1, 1]
        short = min(x.shape[-2:])
        if short < MIN_SIDE:  # paper crops can be 16×16: too small for the backbone's strides
            scale = MIN_SIDE / short
            size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
            x = nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return (x.expand(-1, 3, -1, -1) - _SHIFT) / _SCALE


def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit-normalise each pixel's feature vector (lpips' normalize_tensor)."""
    return x / (torch.sqrt((x**2).sum(dim=1, keepdim=True)) + eps)


def _split_state(state: dict, source) -> tuple[str, dict, dict]:
    """(net name, features state dict keyed like torchvision, lins state dict keyed '0.weight', …)."""
    if not isinstance(state, dict):
        raise InputError("LPIPS weights file does not hold a state dict", source)
    features, lins = {}, {}
    for key, value in state.items():
        if m := re.fullmatch(r"net\.slice\d\.(\d+)\.(weight|bias)", key):  # lpips package layout
            features[f"{m[1]}.{m[2]}"] = value
        elif m := re.fullmatch(r"features\.(\d+)\.(weight|bias)", key):  # torchvision layout
            features[f"{m[1]}.{m[2]}"] = value
        elif m := re.fullmatch(r"(?:lin(\d)|lins\.(\d))\.model\.1\.weight", key):
            lins[f"{m[1] or m[2]}.weight"] = value
    first = features.get("0.weight")
    if first is None or len(lins) != 5:
        raise InputError(
            "not an LPIPS weights file: expected AlexNet/VGG16 feature weights (net.sliceN.* or features.*) "
            f"and 5 lin layers (linN.model.1.weight); found {len(features)} feature and {len(lins)} lin tensors",
            source,
        )
    net = "alex" if tuple(first.shape[-2:]) == (11, 11) else "vgg"
    return net, features, lins


# Said in the report and on the console when no weights file is given: how to get one, not where the code is.
NO_WEIGHTS = (
    "unavailable: no LPIPS weights given. Pass --lpips-weights FILE. To make FILE once on a computer with "
    "internet access: pip install lpips, then python -c \"import lpips, torch; "
    "torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pt')\""
)


def load_lpips(path: "str | Path | None") -> tuple[Optional[LPIPS], str]:
    """(metric, status). metric is None — LPIPS unavailable — without a path or when the file is missing.

    A file that exists but is not LPIPS weights raises InputError: the user asked for LPIPS explicitly.
    """
    if path is None or str(path) == "":
        return None, NO_WEIGHTS
    path = Path(path)
    if not path.is_file():
        return None, f"unavailable: LPIPS weights file not found: {path}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"cannot read LPIPS weights ({e})", path) from e
    metric = LPIPS(state, source=path)
    return metric, f"available: {metric.net_name} backbone from {path}"
