"""ScarEnhance engine: myocardial scar enhancement in LGE cardiac MRI (Hasny et al., MICCAI 2024).

    from scarenhance import enhance_scar, read_image, segment_heart, write_image

    image = read_image("lge.nii.gz")                    # NIfTI, NRRD, MHA or a DICOM series folder
    roi = segment_heart(image)                          # shipped demo heart model; uint8 0/1 on image's grid
    mean, sd = enhance_scar(image, roi, k=5, seed=0)    # shipped demo diffusion model; input kept outside the ROI
    write_image(mean, "lge_enhanced.nii.gz")

Models: `load_segmentation_model(path_or_id)` and `load_diffusion_model(path_or_id)` load a model folder
once for many calls (`model=` of the functions above). Errors are `InputError` / `ModelError`, each
naming the file. The names are imported on first use, so `import scarenhance` stays fast (no torch).
Never imports Slicer, Qt or VTK; the Slicer modules call this package, never the other way round.
"""

__version__ = "0.1.0"

# public name → the module that defines it (imported on first access)
_EXPORTS = {
    "enhance_scar": "scarenhance.diffusion.enhance",
    "load_diffusion_model": "scarenhance.diffusion.enhance",
    "segment_heart": "scarenhance.segmentation.infer",
    "load_segmentation_model": "scarenhance.segmentation.infer",
    "read_image": "scarenhance.io",
    "write_image": "scarenhance.io",
    "InputError": "scarenhance.errors",
    "ModelError": "scarenhance.errors",
    "ScarEnhanceError": "scarenhance.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scarenhance' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # the next access skips __getattr__
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_EXPORTS))
