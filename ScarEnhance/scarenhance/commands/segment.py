"""`scarenhance segment`: the heart ROI (LV blood pool + myocardium + scar), optionally the classes and a
plausibility report, in the input's exact geometry."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="LGE volume (NIfTI, NRRD, MHA or a DICOM series folder)")
    p.add_argument("--output", required=True, help="heart ROI mask to write (uint8 0/1, same grid as the input)")
    p.add_argument("--labels-output", metavar="LABELS",
                   help="also write the classes (uint8: 1 LV blood pool, 2 LV myocardium incl. scar; same grid)")
    p.add_argument("--report", metavar="JSON",
                   help="also write the plausibility report (volume, per-slice area, roundness, position, warnings)")
    p.add_argument("--model", help="heart segmentation model folder or registry id (default: the shipped model)")
    p.add_argument("--dilate-mm", type=float, default=0.0,
                   help="grow the ROI in-plane by this many mm, so scar at its edge is kept (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=8, help="slices per forward pass (default: 8)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args) -> int:
    import json
    import sys
    import time
    from pathlib import Path

    import numpy as np
    import SimpleITK as sitk

    from ..errors import InputError
    from ..image_checks import check_lge
    from ..io import check_output, read_image, write_image
    from ..progress import cli_progress, echo

    images = [Path(p) for p in (args.output, args.labels_output) if p]
    outputs = images + ([Path(args.report)] if args.report else [])
    for path in outputs:  # refuse before the work, not after
        check_output(path, overwrite=args.overwrite, image=path in images)
        if path.resolve() == Path(args.input).resolve():
            raise InputError("the output must not be the input", path)
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise InputError("the output paths must differ from each other", args.output)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    image = read_image(args.input)
    check_lge(image, args.input)

    from ..device import resolve_device  # torch only once the input has passed: bad input fails fast
    from ..segmentation import load_segmentation_model, segment

    device = resolve_device(args.device)
    model = load_segmentation_model(args.model, device)
    if args.labels_output and not model.has_classes:
        raise InputError("this heart model has no blood pool / myocardium classes (a single-output model): "
                         "drop --labels-output or choose a newer model", model.path)
    tic = time.perf_counter()
    try:
        result = segment(image, model=model, dilate_mm=args.dilate_mm, device=str(device), progress=cli_progress,
                         batch_size=args.batch_size)
    except InputError as e:
        raise InputError(e.problem, e.path or args.input) from None
    write_image(result.roi, args.output, overwrite=args.overwrite)
    if args.labels_output:
        write_image(result.labels, args.labels_output, overwrite=args.overwrite)
    report = result.report
    if args.report:
        from ..bundle import atomic_write_bytes

        data = {"input": str(args.input), "model": str(model.path), "dilate_mm": args.dilate_mm, **report.to_dict()}
        atomic_write_bytes(Path(args.report), (json.dumps(data, indent=2) + "\n").encode())
    voxels = int(sitk.GetArrayViewFromImage(result.roi).sum())
    ml = voxels * float(np.prod(image.GetSpacing())) / 1000.0
    seconds = time.perf_counter() - tic
    if report.plausible:
        echo(f"segmented {args.input} in {seconds:.1f} s: {voxels} voxels ({ml:.1f} ml) → {args.output}")
    else:
        echo(f"segmented {args.input} in {seconds:.1f} s, but the result looks implausible → {args.output}")
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        print("check the ROI before enhancing, and correct it by hand if needed", file=sys.stderr, flush=True)
    return 0
