"""`scarenhance train-seg`: train the heart segmentation U-Net and write a model folder."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="labelled dataset folder (EMIDEC, MyoPS or generic images/ + labels/ layout); "
                   "optional with --synth")
    p.add_argument("--synth", type=int, default=0, metavar="N",
                   help="also train on N randomized synthetic slices (scarenhance.synth; the shipped model's data)")
    p.add_argument("--synth-val", type=int, default=256, metavar="N",
                   help="synthetic validation slices when --data gives no validation cases (default: 256)")
    p.add_argument("--synth-seed", type=int, default=1, help="seed of the synthetic bank (validation uses seed + 1000)")
    p.add_argument("--init-from", metavar="MODEL",
                   help="start from this heart model's weights (folder or registry id, e.g. heart-seg): fine-tuning")
    p.add_argument("--scar-weight", type=float, default=0.0, metavar="W",
                   help="add W × the cross-entropy averaged over scar pixels, so bright scar beside the blood pool stays "
                        "myocardium, at some cost to the ROI's Dice (default: 0; README: \"Keeping bright scar in the myocardium\")")
    p.add_argument("--out", required=True, help="model folder to write (bundle layout; checkpoints in OUT/training)")
    p.add_argument("--preset", default="cpu-small", choices=["cpu-small", "cpu-medium", "gpu-paper"],
                   help="cpu-small: 0.8 M parameters, minutes on a CPU (default); cpu-medium: 1.9 M, the shipped model's; "
                        "gpu-paper: the paper's 10.5 M U-Net, 100 epochs, batch 64")
    p.add_argument("--epochs", type=int, help="epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="slices per batch, per process under torchrun (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the preset's: 2e-3 cpu-small, 1e-3 gpu-paper as the paper)")
    p.add_argument("--crop", type=int, help="training crop size in pixels, multiple of 16 (default: the preset's)")
    p.add_argument("--channels", help="comma-separated U-Net widths, e.g. 16,32,64,128,256 (default: the preset's)")
    p.add_argument("--spacing-mm", type=float, default=1.75, help="in-plane pixel size slices are resampled to (default: 1.75)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="fraction of cases held out for validation (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the case split, initial weights and augmentation")
    p.add_argument("--layout", default="auto", choices=["auto", "emidec", "myops", "generic"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--workers", type=int, default=0, help="data-loading worker processes (default: 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap the batches per epoch (quick runs)")
    p.add_argument("--validate-every", type=int, default=None, help="epochs between validations (default: the preset's; the last epoch always)")
    p.add_argument("--no-amp", dest="amp", action="store_false",
                   help="train in fp32 where mixed precision is available (CUDA; CPUs with AMX or AVX512-BF16)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT/training after an interruption")


def run(args) -> int:
    from ..datasets import list_cases

    if args.data:  # a missing or empty data set fails fast, before torch and MONAI load
        list_cases(args.data, args.layout)
    import torch

    from ..errors import InputError
    from ..progress import cli_progress
    from ..segmentation.train import train_segmentation

    channels = None
    if args.channels:
        try:
            channels = tuple(int(c) for c in args.channels.split(","))
        except ValueError:
            raise InputError(f"--channels must be comma-separated integers, got {args.channels!r}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    summary = train_segmentation(
        args.data, args.out, synth=args.synth, synth_val=args.synth_val, synth_seed=args.synth_seed,
        init_from=args.init_from, scar_weight=args.scar_weight, preset=args.preset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, crop=args.crop,
        channels=channels, spacing_mm=args.spacing_mm, val_fraction=args.val_fraction, seed=args.seed, device=args.device,
        resume=args.resume, amp=args.amp, workers=args.workers, layout=args.layout, steps_per_epoch=args.steps_per_epoch,
        validate_every=args.validate_every, command=args.command_line, progress=cli_progress,
    )
    if summary["val_dice"] is not None:
        print(f"validation Dice {summary['val_dice']:.4f} (epoch {summary['best_epoch']}) → {summary['model']}", flush=True)
    else:
        print(f"trained {summary['epochs']} epochs (no validation cases) → {summary['model']}", flush=True)
    return 0
