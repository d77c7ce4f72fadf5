"""The two trained models behind the report's `Models` interface: folders in, segment/enhance out."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..diffusion.agreement import DEFAULT_AGREEMENT


class ModelPair:
    """Heart segmentation + scar diffusion models (paths, registry ids, or None for the shipped defaults).

    whole_image_model: optional diffusion model trained with m = 1 (whole-image noise) for Table 2; it is
    run with an all-ones ROI so that noise covers the whole slice. steps: None for the paper's ancestral
    chain, N for an N-step DDIM chain (capped at λ, so a λ sweep can start at λ = 1). agreement: the standard
    errors each change is shrunk by (diffusion/agreement.py; 0 = the paper's plain mean of the k samples).
    """

    def __init__(self, seg_model=None, diffusion_model=None, whole_image_model=None, steps: Optional[int] = None,
                 device: str = "auto", dilate_mm: float = 0.0, cancel: Optional[threading.Event] = None,
                 agreement: float = DEFAULT_AGREEMENT):
        from ..device import resolve_device
        from ..diffusion import load_diffusion_model
        from ..segmentation import load_segmentation_model

        self.device = resolve_device(device)
        self.steps, self.dilate_mm, self.cancel, self.agreement = steps, dilate_mm, cancel, agreement
        self.seg = load_segmentation_model(seg_model)
        self.diffusion = load_diffusion_model(diffusion_model, device=self.device)
        self.whole = load_diffusion_model(whole_image_model, device=self.device) if whole_image_model else None

    @property
    def has_whole_image_model(self) -> bool:
        return self.whole is not None

    def segment(self, image: sitk.Image, progress=None) -> sitk.Image:
        from ..segmentation import segment_heart

        return segment_heart(image, model=self.seg, dilate_mm=self.dilate_mm, device=str(self.device), progress=progress,
                             cancel=self.cancel)

    def enhance(self, image, roi, *, lam, k, seed, whole_image=False, progress=None):
        from ..diffusion import enhance_scar

        if whole_image:
            ones = sitk.GetImageFromArray(np.ones(sitk.GetArrayViewFromImage(image).shape, np.uint8))
            ones.CopyInformation(image)
            roi = ones
        if not sitk.GetArrayViewFromImage(roi).any():
            # the segmentation found no heart: nothing is enhanced (the report shows it as Dice 0, no change)
            unchanged = sitk.Cast(image, sitk.sitkFloat32)
            return unchanged, sitk.Image(unchanged) * 0.0
        steps = None if self.steps is None else min(self.steps, lam)
        return enhance_scar(image, roi, model=self.whole if whole_image else self.diffusion, lam=lam, k=k,
                            steps=steps, seed=seed, device=self.device, progress=progress, cancel=self.cancel,
                            agreement=self.agreement)

    def describe(self) -> dict:
        out = {"segmentation": _describe(self.seg), "diffusion": _describe(self.diffusion)}
        if self.whole is not None:
            out["whole_image_diffusion"] = _describe(self.whole)
        out["device"] = str(self.device)
        out["steps"] = self.steps
        out["agreement"] = self.agreement
        out["dilate_mm"] = self.dilate_mm
        return out


def _describe(model) -> dict:
    """Folder, id, version and weights SHA-256 of a loaded model (whatever of it the model carries)."""
    meta = getattr(model, "metadata", None) or {}
    info = meta.get("scarenhance", {})
    folder = getattr(model, "model_dir", None) or getattr(model, "path", None)
    return {
        "folder": str(folder) if folder is not None else None,
        "id": info.get("id") or (Path(folder).name if folder is not None else None),
        "version": meta.get("version"),
        "preset": info.get("preset"),
        "weights_sha256": info.get("weights_sha256"),
        "description": meta.get("description") or meta.get("name"),
    }
