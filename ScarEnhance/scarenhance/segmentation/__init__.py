"""Heart segmentation (paper §2.2): a 2D MONAI U-Net on slices at a fixed pixel size, with LV blood pool
and LV myocardium as classes and the heart ROI as their union.

- `network`: presets ("cpu-small", "gpu-paper") → MONAI UNet definitions
- `intensity`: the normalisation the network's input gets (recorded in each model folder)
- `data`: site cases or synthetic slices → normalised slices, case split, augmented crops
- `train`: `train_segmentation(data, out, synth=N, init_from=MODEL, ...)` → a model folder (bundle layout)
- `infer`: `segment(image)` → ROI + labels + plausibility report; `segment_heart(image)` → the ROI only
- `postprocess`: largest component, holes, in-plane dilation in mm
- `plausibility`: size, shape, position and slice agreement checks with warnings
"""

from .infer import HeartSegmentation, SegmentationModel, load_segmentation_model, segment, segment_heart

__all__ = ["HeartSegmentation", "SegmentationModel", "load_segmentation_model", "segment", "segment_heart"]
