"""`scarenhance train-diffusion`: train the localized conditional diffusion model on a labelled dataset.

Targets are made on the fly from the labels (gamma correction, `scarenhance.targets`); the ROI is
the labelled heart (or, with --roi-source model, the segmentation model's prediction, as in the paper).
Runs under torchrun for several GPUs/processes. The output is a model folder for `scarenhance enhance`.
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..diffusion.presets import PREDICTIONS, PRESETS

    p.add_argument("--data", required=True, help="dataset folder (EMIDEC, MyoPS or generic layout)")
    p.add_argument("--out", required=True, help="model folder to write (checkpoints in OUT/training)")
    p.add_argument("--layout", default="auto", choices=["auto", "emidec", "myops", "generic"])
    p.add_argument("--preset", default="cpu-small", choices=sorted(PRESETS),
                   help="network size: cpu-small (~1 M parameters) or gpu-paper (the paper's 32 M SR3 U-Net)")
    p.add_argument("--prediction", default="epsilon", choices=PREDICTIONS,
                   help="what the network outputs: the noise (epsilon, the paper's) or the change from the original "
                        "slice (residual: untrained or unsure, it changes nothing); the sampler and loss work in ε either way")
    p.add_argument("--roi-normalised", action="store_true",
                   help="give the network a third input, the original as z-scores of its ROI, so that scar, myocardium "
                        "and blood stand apart even where min-max scaling crowds the heart into a few grey levels")
    p.add_argument("--myocardium-input", action="store_true",
                   help="give the network the LV myocardium as an input where a reader or the heart model gives one "
                        "(enhance --labels; trained on moved, scar-less and missing walls as well as true ones)")
    p.add_argument("--scar-head-weight", type=float, default=0.0, metavar="W",
                   help="give the network a second output, scar logits, and add W times their cross-entropy against "
                        "the scar labels to the loss: where to brighten, taught directly (0 = none, the paper's)")
    p.add_argument("--snr-gamma", type=float, default=0.0, metavar="G",
                   help="min-SNR-G weighting of the loss over timesteps (0 = the paper's plain ε-loss; 5 is usual)")
    p.add_argument("--loss-norm", type=int, default=2, choices=[1, 2], metavar="P",
                   help="2: the paper's squared ε-error (the network learns the mean of the targets that fit what it "
                        "sees); 1: the absolute error (their median: a pixel changes only where scar is the likelier "
                        "reading, so healthy myocardium that might be scar is left alone)")
    p.add_argument("--epochs", type=int, default=200, help="paper: 200")
    p.add_argument("--batch-size", type=int, default=16, help="per process (paper: 16)")
    p.add_argument("--crop-size", type=int, default=64, help="training crop side in native pixels, around the heart")
    p.add_argument("--crop-min", type=int, default=0, metavar="PX",
                   help="train on windows of random sides from PX to --crop-size, one side per batch, so that the output "
                        "does not depend on how much surroundings the window holds (0 = every window --crop-size)")
    p.add_argument("--scar-focus", type=float, default=0.5,
                   help="fraction of training crops centred on scar rather than anywhere in the ROI (0 = paper's uniform crops)")
    p.add_argument("--samples-per-epoch", type=int, default=None, help="crops per epoch (default: one per training slice)")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (paper: Adam 1e-4)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--t-max", type=int, default=1000,
                   help="train on timesteps below this (paper: all 1000; a small CPU model may use ~400 since "
                        "inference starts at lambda ≤ 300)")
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--sample-every", type=int, default=0,
                   help="every N epochs, enhance a few validation slices in fast mode and log their CNR (0 = never)")
    p.add_argument("--roi-source", default="labels", choices=["labels", "model", "randomized"],
                   help="ROI from the labelled heart, from the segmentation model's predictions (paper), or the labelled "
                        "heart randomly dilated, eroded or made irregular per slice (randomized: the ROI's outline "
                        "then tells the network nothing about the tissue)")
    p.add_argument("--seg-model", default=None, help="segmentation model for --roi-source model (default: shipped)")
    p.add_argument("--whole-image", action="store_true",
                   help="ablation (paper Table 2): noise and loss over the whole image (m = 1) instead of the heart ROI")
    p.add_argument("--from-original", type=float, default=0.0, metavar="P",
                   help="share of steps noised from the original and scored against the target (0 = the paper's training)")
    p.add_argument("--scar-weight", type=float, default=1.0, metavar="W",
                   help="scar pixels count W times in the loss's mean over the ROI (1 = the paper's uniform loss)")
    p.add_argument("--myo-weight", type=float, default=1.0, metavar="W",
                   help="myocardium pixels count W times in the loss's mean over the ROI (1 = the paper's uniform loss)")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from these weights: a diffusion model folder or id (fine-tuning, e.g. the demo model on "
                        "your data), or a train-diffusion checkpoint such as RUN/training/latest.pt (its EMA weights)")
    p.add_argument("--time-limit-min", type=float, default=None, help="stop cleanly after this many minutes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--no-amp", dest="amp", action="store_false",
                   help="train in fp32 where mixed precision is available (CUDA; CPUs with AMX or AVX512-BF16)")
    p.add_argument("--resume", action="store_true", help="continue the training run in --out (at the --lr given now: resume with a lower --lr for a final phase)")


def run(args) -> int:
    from ..datasets import list_cases

    if args.data:  # a missing or empty data set fails fast, before torch and MONAI load
        list_cases(args.data, args.layout)
    from ..diffusion.train import DiffusionTrainConfig, train_diffusion
    from ..progress import cli_progress

    config = DiffusionTrainConfig(
        preset=args.preset, prediction=args.prediction, roi_normalised=args.roi_normalised, myocardium_input=args.myocardium_input,
        scar_head_weight=args.scar_head_weight, snr_gamma=args.snr_gamma, loss_norm=args.loss_norm, epochs=args.epochs, batch_size=args.batch_size, crop_size=args.crop_size, crop_min=args.crop_min, scar_focus=args.scar_focus,
        samples_per_epoch=args.samples_per_epoch, lr=args.lr, weight_decay=args.weight_decay,
        ema_decay=args.ema_decay, grad_clip=args.grad_clip, t_max=args.t_max, val_fraction=args.val_fraction,
        sample_every=args.sample_every, roi_source=args.roi_source, whole_image=args.whole_image, from_original=args.from_original,
        scar_weight=args.scar_weight, myo_weight=args.myo_weight, init_from=args.init_from, seg_model=args.seg_model,
        time_limit_min=args.time_limit_min, seed=args.seed, num_workers=args.workers, amp=args.amp,
    )
    train_diffusion(args.data, args.out, config, layout=args.layout, device=args.device, resume=args.resume,
                    command=args.command_line, progress=cli_progress)
    return 0
