"""`scarenhance enhance`: the scar inside an ROI enhanced by localized partial diffusion (what the
k samples agree on)."""

import argparse

from ..diffusion.agreement import DEFAULT_AGREEMENT


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="LGE volume (NIfTI, NRRD, MHA or a DICOM series folder)")
    p.add_argument("--roi", required=True, help="heart ROI mask (non-zero = inside), e.g. from `scarenhance segment`")
    p.add_argument("--output", required=True,
                   help="enhanced volume to write (mean of the k samples; float32, or float64 where float32 "
                        "cannot hold the input exactly, so every voxel outside the ROI is the input's)")
    p.add_argument("--std-output", help="also write the per-voxel SD over the k samples (uncertainty map)")
    p.add_argument("--labels", metavar="LABELS",
                   help="heart classes from `scarenhance segment --labels-output` (2 = LV myocardium, scar included): "
                        "the myocardium of the safety check, and an input of models that take one (their metadata's "
                        "myocardium_input); without it the shipped heart model finds the safety check's myocardium")
    p.add_argument("--safety-output", metavar="JSON",
                   help="where to write the safety check (default: beside the output, OUTPUT_NAME.safety.json)")
    p.add_argument("--model", help="diffusion model folder or registry id (default: the shipped demo model)")
    p.add_argument("--lam", type=int, default=250, help="partial-diffusion start step λ, 1…1000 (paper: 250)")
    p.add_argument("--k", type=int, default=5, help="samples averaged (paper: 5)")
    p.add_argument("--agreement", type=float, default=DEFAULT_AGREEMENT, metavar="Z",
                   help="keep of each voxel's change what the k samples agree on: the mean change shrunk toward 0 by "
                        f"Z standard errors of the samples (default {DEFAULT_AGREEMENT:g}; 0 = the paper's plain mean; "
                        "no effect when k = 1)")
    p.add_argument("--steps", type=int, default=None,
                   help="fast mode: a DDIM chain of N steps from λ to 0 (N ≤ λ); default: the full λ-step DDPM chain")
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed → same output on the CPU)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--fp32", action="store_true",
                   help="run the network in fp32 also where the device is faster in bf16/fp16 (CUDA, CPUs with AMX or AVX512-BF16)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args) -> int:
    import json
    import time
    from pathlib import Path

    from ..diffusion.inputs import check_parameters, roi_on_image_grid
    from ..diffusion.schedule import T
    from ..errors import InputError
    from ..image_checks import check_lge, check_roi
    from ..io import check_output, read_image, strip_image_extension, write_image
    from ..progress import cli_progress, echo

    # Everything that can be refused is refused here, before torch is imported and before minutes of work.
    check_parameters(args.lam, args.k, args.steps, args.seed, T, args.agreement)
    safety_path = Path(args.safety_output) if args.safety_output else Path(args.output).with_name(
        strip_image_extension(args.output) + ".safety.json")
    outputs = [Path(args.output)] + ([Path(args.std_output)] if args.std_output else [])
    for path in outputs:
        check_output(path, overwrite=args.overwrite)
    check_output(safety_path, overwrite=args.overwrite, image=False)
    resolved = [p.resolve() for p in outputs + [safety_path]]
    inputs = [Path(p).resolve() for p in (args.input, args.roi, args.labels) if p]
    if len(set(resolved)) != len(resolved) or any(p in resolved for p in inputs):
        raise InputError("output paths must differ from each other and from the inputs", args.output)
    image = read_image(args.input)
    check_lge(image, args.input)
    roi = read_image(args.roi)
    check_roi(roi, args.roi)
    labels = read_image(args.labels) if args.labels else None
    checks = [(lambda: roi_on_image_grid(roi, image), args.roi)]
    if labels is not None:
        checks.append((lambda: _myocardium_from_labels(labels, image), args.labels))
    checked = []
    for check, path in checks:
        try:
            checked.append(check())
        except InputError as e:  # name the file the problem is in
            raise InputError(e.problem, path) from None
    inside, myocardium = checked[0], (checked[1] if labels is not None else None)

    from ..diffusion import enhance_scar, load_diffusion_model
    from ..diffusion.safety import assess_enhancement

    model = load_diffusion_model(args.model)
    tic = time.perf_counter()
    mean, std = enhance_scar(image, roi, model=model, lam=args.lam, k=args.k, steps=args.steps, seed=args.seed,
                             device=args.device, fp32=args.fp32, progress=cli_progress, myocardium=myocardium,
                             agreement=args.agreement)
    seconds = time.perf_counter() - tic
    if myocardium is None:
        myocardium = _myocardium_from_model(image)
    report = assess_enhancement(image, mean, std, myocardium & inside) if myocardium is not None else None
    write_image(mean, args.output, overwrite=args.overwrite)
    if args.std_output:
        write_image(std, args.std_output, overwrite=args.overwrite)
    data = report.to_dict() if report else {"verdict": "not assessed", "summary": "Safety check: the heart model has no "
                                                     "myocardium class; give --labels", "flagged_slices": [], "slices": []}
    data = {"input": str(args.input), "output": str(args.output), "lam": args.lam, "k": args.k, "steps": args.steps,
            "agreement": args.agreement, **data}
    from ..bundle import atomic_write_bytes

    atomic_write_bytes(safety_path, (json.dumps(data, indent=2) + "\n").encode())
    echo(f"enhanced {args.input} in {seconds:.1f} s → {args.output} ({mean.GetPixelIDTypeAsString()})"
         + (f" (SD over k: {args.std_output})" if args.std_output else ""))
    echo(f"{data['summary']} → {safety_path}")
    return 0


def _myocardium_from_labels(labels, image):
    """Boolean (z, y, x) LV myocardium (class 2) of a labels file, on the image's grid."""
    import numpy as np
    import SimpleITK as sitk

    from ..diffusion.inputs import roi_on_image_grid
    from ..labels import CLASS_MYOCARDIUM

    from ..errors import InputError

    myo = sitk.Cast(sitk.BinaryThreshold(labels, CLASS_MYOCARDIUM, CLASS_MYOCARDIUM, 1, 0), sitk.sitkUInt8)
    if not np.any(sitk.GetArrayViewFromImage(myo)):
        raise InputError(f"the labels have no LV myocardium (value {CLASS_MYOCARDIUM}); "
                         "give the classes written by `scarenhance segment --labels-output`")
    return roi_on_image_grid(myo, image)


def _myocardium_from_model(image):
    """The shipped heart model's LV myocardium, or None when the model has no classes."""
    import SimpleITK as sitk

    from ..labels import CLASS_MYOCARDIUM
    from ..segmentation import load_segmentation_model, segment

    model = load_segmentation_model(None, "cpu")
    if not model.has_classes:
        return None
    return sitk.GetArrayFromImage(segment(image, model=model, device="cpu").labels) == CLASS_MYOCARDIUM
