"""`scarenhance segment`: a binary heart ROI (blood pool + myocardium + scar) in the input's exact geometry."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="LGE volume (NIfTI, NRRD, MHA or a DICOM series folder)")
    p.add_argument("--output", required=True, help="mask to write (uint8 0/1, same grid as the input)")
    p.add_argument("--model", help="heart segmentation model folder or registry id (default: the shipped demo model)")
    p.add_argument("--dilate-mm", type=float, default=0.0,
                   help="grow the ROI in-plane by this many mm, so scar at its edge is kept (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=8, help="slices per forward pass (default: 8)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args) -> int:
    import time
    from pathlib import Path

    import numpy as np
    import SimpleITK as sitk

    from ..errors import InputError
    from ..image_checks import check_lge
    from ..io import check_output, read_image, write_image
    from ..progress import cli_progress

    check_output(args.output, overwrite=args.overwrite)  # refuse before the work, not after
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise InputError("the output must not be the input", args.output)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    image = read_image(args.input)
    check_lge(image, args.input)

    from ..device import resolve_device  # torch only once the input has passed: bad input fails fast
    from ..segmentation import load_segmentation_model, segment_heart

    device = resolve_device(args.device)
    model = load_segmentation_model(args.model, device)
    tic = time.perf_counter()
    try:
        mask = segment_heart(image, model=model, dilate_mm=args.dilate_mm, device=str(device), progress=cli_progress,
                             batch_size=args.batch_size)
    except InputError as e:
        raise InputError(e.problem, e.path or args.input) from None
    write_image(mask, args.output, overwrite=args.overwrite)
    voxels = int(sitk.GetArrayViewFromImage(mask).sum())
    ml = voxels * float(np.prod(image.GetSpacing())) / 1000.0
    print(f"segmented {args.input} in {time.perf_counter() - tic:.1f} s: {voxels} voxels ({ml:.1f} ml) → {args.output}", flush=True)
    return 0
