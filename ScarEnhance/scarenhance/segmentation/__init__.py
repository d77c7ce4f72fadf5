"""Heart ROI segmentation (paper §2.2): a 2D MONAI U-Net on slices at a fixed pixel size.

- `network`: presets ("cpu-small", "gpu-paper") → MONAI UNet definitions
- `data`: dataset cases → slices at the model's spacing, case split, augmentation
- `train`: `train_segmentation(data, out, ...)` → a model folder (bundle layout)
- `infer`: `segment_heart(image, model=None, dilate_mm=0.0, device="auto")`, `load_segmentation_model(path)`
- `postprocess`: largest component, holes, in-plane dilation in mm
"""

from .infer import SegmentationModel, load_segmentation_model, segment_heart

__all__ = ["SegmentationModel", "load_segmentation_model", "segment_heart"]
