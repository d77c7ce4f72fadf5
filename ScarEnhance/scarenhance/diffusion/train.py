"""Training of the conditional denoiser (paper §2.2, eq. 5) on the shared loop (scarenhance.training).

One step: a batch of ROI-centred crops (x_0, y_0, m); t ~ U{0 … t_max−1} (MONAI indices, the paper's
1 … T when t_max = T); ε ~ N(0, I); y_t = √ᾱ_t·y_0 + √(1−ᾱ_t)·m·ε; loss = ROI-normalised ‖(ε̂ − ε)·m‖².
AdamW, gradient clipping, AMP on CUDA, checkpoints/resume/TensorBoard/DDP come from `training.fit`.

EMA: `EMADenoiser` holds the trained network and its exponential moving average side by side, so the
loop's checkpoints, resume and keep-best carry the EMA without knowing about it; the optimizer's
step hook updates the average after every step. Validation and the shipped model use the EMA.

Validation is cheap on purpose: masked ε-MSE of the EMA network on a fixed batch of validation crops
at a few fixed t with fixed noise (lower is better). It stays the squared error whatever `loss_norm` is, so
runs compare; a run trained on the absolute error is not best by it. Every `sample_every` epochs it also enhances a few
validation slices in fast mode and logs CNR(scar, myo) before → after; it never runs full chains.

t_max: the paper trains on all T = 1000 steps. Inference starts at λ = 250 (≤ 300 in practice), so a
small CPU model may train on t < t_max (e.g. 400) only, spending its few steps where inference runs;
the model then records `train_t_max` and enhance_scar warns for λ beyond it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..device import autocast_dtype, precision_name
from ..errors import Cancelled, InputError
from ..progress import ProgressFn, no_progress
from .data import CropDataset, SlicePair, centre_crop, fixed_batch, random_sides, slice_pairs
from .network import ConditionalDenoiser, count_parameters, network_def
from .noise import add_localized_noise, masked_error
from .schedule import Schedule, make_schedule

VAL_TIMESTEPS = (25, 100, 250)  # fixed t of the validation ε-MSE (clipped below t_max)


@dataclass
class DiffusionTrainConfig:
    preset: str = "cpu-small"
    prediction: str = "epsilon"  # what the U-Net outputs (network.py): "epsilon" = paper, "residual" = x̂_0 − x_0
    roi_normalised: bool = False  # a third input: the original as z-scores of its ROI (network.py)
    myocardium_input: bool = False  # an input: the LV myocardium where a reader or model gives one (myocardium_input.py)
    network: dict = field(default_factory=dict)  # overrides of the preset's DiffusionModelUNet arguments
    epochs: int = 200  # paper: 200
    batch_size: int = 16  # paper: 16
    crop_size: int = 64  # multiple of the network's downsampling factor
    crop_min: int = 0  # > 0: each batch is cut to a random side from crop_min to crop_size (data.random_sides)
    scar_focus: float = 0.5  # fraction of crops centred on scar (data.py); 0 = ROI-centred only
    samples_per_epoch: "int | None" = None  # crops per epoch; default one per training slice
    lr: float = 1e-4  # paper: Adam 1e-4
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    t_max: int = 1000  # train on t < t_max (see module docstring)
    val_fraction: float = 0.15
    val_crops: int = 32
    sample_every: int = 0  # epochs between fast-mode CNR checks on validation slices (0 = never)
    roi_source: str = "labels"  # "model": the segmentation model's predictions (as in the paper); "randomized"
    whole_image: bool = False  # Table 2 ablation: noise and loss over the whole crop (m = 1), not the ROI
    from_original: float = 0.0  # share of steps noised from x_0 and scored against y_0 (make_train_step); 0 = paper
    scar_weight: float = 1.0  # loss weight of scar pixels relative to blood (make_train_step); 1 = paper
    myo_weight: float = 1.0  # loss weight of myocardium pixels relative to blood; 1 = paper
    snr_gamma: float = 0.0  # min-SNR-γ weighting of the ε-loss (make_train_step); 0 = paper (plain ε-loss)
    loss_norm: int = 2  # 2 = the paper's squared ε-error; 1 = absolute error: a median, not a mean (make_train_step)
    scar_head_weight: float = 0.0  # > 0: a second output, scar logits, trained on the labels (make_train_step); 0 = paper
    amp: bool = True  # mixed precision where the device has it (CUDA; CPUs with AMX or AVX512-BF16)
    init_from: "str | None" = None  # a model folder or a run's latest.pt whose weights start a new run (fine-tuning)
    seg_model: "str | None" = None
    seed: int = 0
    time_limit_min: "float | None" = None  # stop cleanly after this many minutes (keeps the best model)
    num_workers: int = 0
    lam: int = 250  # inference defaults recorded in the model
    k: int = 5
    fast_steps: int = 20


class EMADenoiser(nn.Module):
    """The trained network (`net`) and its exponential moving average (`ema.module`), one state_dict.

    forward runs `net`; call `update_ema()` after each optimizer step (train_diffusion registers it as
    the optimizer's step hook). The decay warms up as min(decay, (1 + n) / (10 + n)) so early, poor
    weights fade quickly.
    """

    def __init__(self, net: nn.Module, decay: float = 0.999):
        super().__init__()
        from torch.optim.swa_utils import AveragedModel

        self.net = net

        def ema(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
            return d * averaged + (1.0 - d) * current

        self.ema = AveragedModel(net, avg_fn=ema)
        for p in self.ema.parameters():  # never trained directly (and ignored by DDP)
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor, t: torch.Tensor, roi: "torch.Tensor | None" = None, with_scar: bool = False):
        return self.net(x, t, roi, with_scar)

    @torch.no_grad()
    def update_ema(self) -> None:
        self.ema.update_parameters(self.net)

    @property
    def averaged(self) -> nn.Module:
        return self.ema.module


def ema_weights(state: dict) -> dict:
    """The EMA network's state_dict from an EMADenoiser state_dict."""
    prefix = "ema.module."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


FROM_ORIGINAL_T_MIN = 100  # from-original steps start here: below it the chain already carries the change


def make_train_step(schedule: Schedule, t_max: int, whole_image: bool = False, from_original: float = 0.0,
                    scar_weight: float = 1.0, myo_weight: float = 1.0, snr_gamma: float = 0.0,
                    loss_norm: int = 2, scar_head_weight: float = 0.0) -> Callable:
    """train_step(model, batch) -> loss, for training.fit. batch: x0, y0, mask (scar, myo) (B, 1, s, s).

    whole_image: the ablation of the paper's Table 2, plain conditional DDPM with m = 1 everywhere.
    from_original: share of samples whose noisy input is built from the ORIGINAL x_0 (at t ≥ 100) while
    the regressed noise is measured against the TARGET y_0, ε* = (y_t − √ᾱ·y_0)/√(1−ᾱ). Partial diffusion
    starts from a noised original, which carries none of the enhancement; with plain training a small
    network learns to read the enhancement from y_t and then adds little. 0 gives the paper's loss.
    scar_weight, myo_weight: scar (batch["scar"]) and myocardium (batch["myo"]) pixels count this many
    times in the ROI's mean squared error (blood: 1). Scar is a few percent of the ROI, so with the uniform
    loss (all 1, the paper's) a small network settles for darkening the blood pool and barely brightens
    scar, the change the method exists for; weighting scar alone then teaches it to brighten bright
    myocardium too (a too-short inversion time), which the myocardium's weight holds back.
    snr_gamma: each sample's ε-loss is weighted min(SNR_t, γ) / SNR_t (Hang et al., ICCV 2023, "min-SNR").
    The ε-error of a residual network is its x̂_0 error times √SNR_t, so the plain ε-loss would be ruled
    by the few t near 0, where SNR reaches 10⁴; with the weight every t ≥ the one where SNR = γ counts as
    its x̂_0 error times SNR_t, and smaller t no more than γ times it. 0 gives the paper's loss.
    loss_norm: 2, the paper's squared error, makes the network's x̂_0 the MEAN of the targets that fit its
    input: a healthy-myocardium pixel that is scar with probability q is brightened by q times the scar's
    gamma change, and on real LGE, where the remote myocardium sits near 15 of 255, a few per cent of q
    already brighten it by more than 3 %. 1, the absolute error, makes x̂_0 their (weighted) MEDIAN: a pixel
    changes only where scar is the likelier reading (q·scar_weight > (1 − q)·myo_weight), and then fully.
    scar_head_weight: > 0 adds this times the binary cross-entropy of the network's scar logits (a scar_head
    network) against batch["scar"], averaged over the ROI's pixels: the decision where to brighten, taught by
    the labels directly instead of only through the ε-loss. 0 gives the paper's loss.
    """
    if scar_weight < 0 or myo_weight < 0:
        raise InputError(f"tissue weights must be ≥ 0, got scar {scar_weight}, myocardium {myo_weight}")
    if snr_gamma < 0:
        raise InputError(f"snr_gamma must be ≥ 0 (0 = the paper's plain loss), got {snr_gamma}")
    if loss_norm not in (1, 2):
        raise InputError(f"the loss norm must be 1 (absolute error) or 2 (squared, the paper's), got {loss_norm!r}")
    if scar_head_weight < 0:
        raise InputError(f"the scar head's loss weight must be ≥ 0 (0 = no scar head), got {scar_head_weight}")

    def eps_loss(eps_hat, eps, mask, weight, t):
        return masked_error(eps_hat, eps, mask, weight, snr_weights(schedule, t, snr_gamma, loss_norm), loss_norm)

    def predict_and_score(model, net_in, t, roi, target, mask, weight, batch):
        if scar_head_weight <= 0:
            return eps_loss(model(net_in, t, roi), target, mask, weight, t)
        eps_hat, scar_logits = model(net_in, t, roi, with_scar=True)
        return eps_loss(eps_hat, target, mask, weight, t) + scar_head_weight * scar_head_loss(scar_logits, batch["scar"], roi)

    def train_step(model: nn.Module, batch: dict) -> torch.Tensor:
        x0, y0, mask = batch["x0"], batch["y0"], batch["mask"]
        given = [batch["myo_in"]] if "myo_in" in batch else []  # a myocardium-input network's third channel
        roi = mask  # the ROI-normalised input's statistics stay the heart's in the whole-image ablation too
        weight = tissue_weights(batch, scar_weight, myo_weight)
        if whole_image:
            mask = torch.ones_like(mask)
        n = x0.shape[0]
        t = torch.randint(0, t_max, (n,), device=x0.device)
        eps = torch.randn_like(y0)
        if from_original <= 0:
            yt = add_localized_noise(y0, mask, eps, t, schedule)
            return predict_and_score(model, torch.cat([yt, x0, *given], dim=1), t, roi, eps, mask, weight, batch)
        pick = torch.rand(n, device=x0.device) < from_original
        t = torch.where(pick, torch.randint(min(FROM_ORIGINAL_T_MIN, t_max - 1), t_max, (n,), device=x0.device), t)
        start = torch.where(pick.view(-1, 1, 1, 1), x0, y0)
        yt = add_localized_noise(start, mask, eps, t, schedule)
        a = schedule.alphas_cumprod.to(device=x0.device, dtype=y0.dtype)[t].view(-1, 1, 1, 1)
        target = (yt - a.sqrt() * y0) / (1 - a).sqrt()  # = ε where start is y0
        return predict_and_score(model, torch.cat([yt, x0, *given], dim=1), t, roi, target, mask, weight, batch)

    return train_step


def snr_weights(schedule: Schedule, t: torch.Tensor, snr_gamma: float, loss_norm: int = 2) -> "torch.Tensor | None":
    """Per-sample weights (min(SNR_t, γ) / SNR_t)^(norm/2) of the ε-loss (make_train_step); None when γ = 0.
    The ε-error is √SNR_t times the x̂_0 error, so the absolute error takes the square root of the weight."""
    if snr_gamma <= 0:
        return None
    a = schedule.alphas_cumprod.to(t.device)[t]
    snr = a / (1 - a)
    return ((snr.clamp(max=snr_gamma) / snr) ** (loss_norm / 2)).float()


def scar_head_loss(logits: torch.Tensor, scar: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of scar logits against the scar labels, averaged over the ROI's pixels (float32:
    the logits may come out of bf16 autocast)."""
    bce = nn.functional.binary_cross_entropy_with_logits(logits.float(), scar.float(), reduction="none")
    m = (roi > 0.5).float()
    return (bce * m).sum() / m.sum().clamp_min(1.0)


def tissue_weights(batch: dict, scar_weight: float, myo_weight: float = 1.0) -> "torch.Tensor | None":
    """Per-pixel loss weights: scar_weight on batch["scar"], myo_weight on batch["myo"], 1 elsewhere;
    None when both are 1 (the plain loss)."""
    if scar_weight == 1.0 and myo_weight == 1.0:
        return None
    return 1.0 + (scar_weight - 1.0) * batch["scar"] + (myo_weight - 1.0) * batch["myo"]


@torch.no_grad()
def masked_eps_mse(net: nn.Module, batch: dict, schedule: Schedule, timesteps=VAL_TIMESTEPS, seed: int = 0,
                   scar_weight: float = 1.0, myo_weight: float = 1.0, snr_gamma: float = 0.0) -> float:
    """Mean masked ε-MSE of `net` on `batch` at the fixed `timesteps`, with fixed noise (scar pixels,
    myocardium and timesteps weighted as in training)."""
    device = next(net.parameters()).device
    g = torch.Generator().manual_seed(seed)
    x0, y0, mask = (batch[k].to(device) for k in ("x0", "y0", "mask"))  # once, for every t
    given = [batch["myo_in"].to(device)] if "myo_in" in batch else []
    weight = tissue_weights(batch, scar_weight, myo_weight)
    weight = None if weight is None else weight.to(device)
    losses = []
    for t_value in timesteps:
        eps = torch.randn(y0.shape, generator=g).to(device)
        t = torch.full((x0.shape[0],), t_value, dtype=torch.long, device=device)
        yt = add_localized_noise(y0, mask, eps, t, schedule)
        losses.append(float(masked_error(net(torch.cat([yt, x0, *given], dim=1), t, mask).float(), eps, mask, weight,
                                         snr_weights(schedule, t, snr_gamma))))
    return float(np.mean(losses))


def fast_cnr_check(net: nn.Module, pairs: list[SlicePair], schedule: Schedule, lam: int = 250, steps: int = 10,
                   k: int = 1, seed: int = 0, max_slices: int = 4, windows: tuple[int, int] = (0, 0)) -> "tuple[float, float] | None":
    """Mean CNR(scar, myo) before and after a fast-mode enhancement of the `max_slices` pairs with the
    most scar (at least 5 scar and 5 myocardium pixels), in windows of `windows` = (smallest, largest) px
    sides (0: unbounded) as enhance_scar uses them; None when no pair has scar. A myocardium-input network is
    given the labelled wall (myocardium and scar)."""
    from .. import labels as L
    from ..evaluation.metrics import cnr
    from .crops import extract_crops, paste_crops, plan_crops
    from .myocardium_input import encode as encode_myocardium
    from .sampler import sample

    usable = [p for p in pairs if (p.labels == L.SCAR).sum() >= 5 and (p.labels == L.MYOCARDIUM).sum() >= 5]
    usable = sorted(usable, key=lambda p: -int((p.labels == L.SCAR).sum()))[:max_slices]
    if not usable:
        return None
    before, after = [], []
    device = next(net.parameters()).device
    for p in usable:
        plan = plan_crops(p.roi[None], margin=16, multiple_of=getattr(net, "multiple_of", 1), min_size=windows[0],
                          max_size=windows[1])
        x0 = extract_crops(p.image[None] / 127.5 - 1, plan, fill=-1.0)
        m = extract_crops(p.roi[None].astype(np.float32), plan)
        wall = np.isin(p.labels, (L.MYOCARDIUM, L.SCAR))[None]
        myo = extract_crops(encode_myocardium(wall, wall.shape), plan, fill=-1.0) if getattr(net, "myocardium_input", False) else None
        out = sample(net, x0, m, schedule, lam=min(lam, schedule.num_train_timesteps), k=k, steps=steps, seed=seed,
                     slice_ids=plan.seed_ids, device=device, myocardium=myo)
        enhanced = paste_crops(p.image[None], (out.mean(0) + 1) * 127.5, plan, mask=p.roi[None])[0]
        scar, myo = p.labels == L.SCAR, p.labels == L.MYOCARDIUM
        before.append(cnr(p.image, scar, myo))
        after.append(cnr(enhanced, scar, myo))
    return float(np.nanmean(before)), float(np.nanmean(after))


def check_crop_sides(config: DiffusionTrainConfig, multiple_of: int) -> None:
    """crop_size, and crop_min when set, must be multiples of the network's factor, crop_min ≤ crop_size."""
    if config.crop_size <= 0 or config.crop_size % multiple_of:
        raise InputError(f"crop size must be a positive multiple of {multiple_of} for preset {config.preset}, got {config.crop_size}")
    if config.crop_min < 0 or config.crop_min % multiple_of:
        raise InputError(f"the smallest crop (--crop-min) must be 0 or a positive multiple of {multiple_of} for preset "
                         f"{config.preset}, got {config.crop_min}")
    if config.crop_min > config.crop_size:
        raise InputError(f"the smallest crop (--crop-min {config.crop_min}) cannot exceed the crop size ({config.crop_size})")


def smallest_window(config: DiffusionTrainConfig) -> int:
    """The smallest window side the network trains on: the floor of enhance_scar's windows."""
    return config.crop_min or config.crop_size


def _in_random_windows(step: Callable, next_side: Callable[[], int]) -> Callable:
    """The train step on each batch cut to the next random side (data.centre_crop)."""
    return lambda model, batch: step(model, centre_crop(batch, next_side()))


def split_cases(names: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, val) case names: a seeded shuffle, at least one case on each side when there are two."""
    order = [str(n) for n in np.random.default_rng(seed).permutation(sorted(names))]
    n_val = int(round(val_fraction * len(order))) if len(order) >= 2 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and len(order) >= 2 else 0), len(order) - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def train_diffusion(
    data_dir: "str | Path",
    out_dir: "str | Path",
    config: DiffusionTrainConfig = DiffusionTrainConfig(),
    layout: str = "auto",
    device: str = "auto",
    resume: bool = False,
    command: "str | None" = None,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[threading.Event] = None,
    log: Optional[Callable[[str], None]] = None,
) -> dict:
    """Train on the cases under `data_dir` and write the model folder `out_dir` (bundle layout; the
    checkpoints live in out_dir/training). Returns a summary dict (also in the model's metadata)."""
    from ..bundle import save_bundle
    from ..datasets import list_cases, load_case
    from ..training import FitConfig, cleanup, fit, init_distributed, make_loader, wrap_model
    from ..training.loop import stderr_log

    progress = progress or no_progress
    log = log or stderr_log
    out = Path(out_dir)
    if (out / "configs" / "metadata.json").exists() and not resume:
        raise InputError("a model folder exists here already; pass --resume to continue its training or choose another --out", out)
    ctx = init_distributed(device)
    torch.manual_seed(config.seed + ctx.rank)
    schedule = make_schedule()
    if not 1 <= config.t_max <= schedule.num_train_timesteps:
        raise InputError(f"t_max must be between 1 and {schedule.num_train_timesteps}, got {config.t_max}")

    names = list_cases(data_dir, layout)
    train_names, val_names = split_cases([str(n) for n in names], config.val_fraction, config.seed)
    roi_fn = _roi_function(config, device)
    progress(0.0, f"reading {len(names)} cases")
    loaded = {str(n): load_case(data_dir, n, layout) for n in names}
    train_cases, val_cases = [loaded[n] for n in train_names], [loaded[n] for n in val_names]
    from ..targets import dataset_blood_mean

    # over every case in the folder's order, validation ones included, exactly as `scarenhance targets` computes
    # it (paper §2.1: "all the blood pools in the dataset"): a pipeline's RUN/targets/ are the targets trained on
    blood_mean = dataset_blood_mean(loaded.values())
    train_pairs = slice_pairs(train_cases, blood_mean=blood_mean, roi_fn=roi_fn)
    val_pairs = slice_pairs(val_cases, blood_mean=blood_mean, roi_fn=roi_fn) if val_names else []
    del loaded, train_cases, val_cases
    if ctx.is_main:
        log(f"train-diffusion: {len(train_names)} training cases ({len(train_pairs)} slices), {len(val_names)} validation "
            f"cases ({len(val_pairs)} slices), dataset blood mean {blood_mean:.2f}, device {ctx.device}")

    net = _network(config)
    check_crop_sides(config, net.multiple_of)
    if config.init_from and not resume:  # on --resume the run's own checkpoint holds the weights
        _start_from(net, config.init_from, log if ctx.is_main else (lambda _: None))
    model = EMADenoiser(net, config.ema_decay).to(ctx.device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    optimizer.register_step_post_hook(lambda *_: model.update_ema())
    wrapped = wrap_model(model, ctx)
    dataset = CropDataset(train_pairs, config.crop_size, length=config.samples_per_epoch, seed=config.seed + ctx.rank,
                          scar_focus=config.scar_focus, myocardium=config.myocardium_input)
    loader = make_loader(dataset, ctx, batch_size=config.batch_size, shuffle=True, seed=config.seed,
                         num_workers=config.num_workers, drop_last=len(dataset) >= config.batch_size)
    val_batch = fixed_batch(val_pairs or train_pairs, config.crop_size, config.val_crops, seed=config.seed,
                            myocardium=config.myocardium_input)
    val_t = tuple(t for t in VAL_TIMESTEPS if t < config.t_max) or (config.t_max - 1,)
    epoch_counter = {"n": 0}

    def validate(module: nn.Module) -> float:
        ema_net = module.averaged
        loss = masked_eps_mse(ema_net, val_batch, schedule, val_t, seed=config.seed,
                              scar_weight=config.scar_weight, myo_weight=config.myo_weight, snr_gamma=config.snr_gamma)
        epoch_counter["n"] += 1
        if config.sample_every and epoch_counter["n"] % config.sample_every == 0 and ctx.is_main:
            check = fast_cnr_check(ema_net, val_pairs or train_pairs, schedule, lam=min(config.lam, config.t_max),
                                   windows=(smallest_window(config), config.crop_size))
            if check is not None:
                log(f"train-diffusion: fast-mode check on validation slices: CNR(scar,myo) {check[0]:.2f} → {check[1]:.2f}")
        return loss

    history_meta = {"blood_mean": blood_mean, "blood_mean_of": "every case under the data folder (training and validation)",
                    "train_cases": train_names, "val_cases": val_names, "processes": ctx.world_size,
                    "precision": precision_name(autocast_dtype(ctx.device) if config.amp else None)}
    summary: dict = {}

    def write_model(epoch: int, metric: "float | None", weights: dict) -> None:
        final = _network(config)
        final.load_state_dict(ema_weights(weights))
        meta = _metadata(config, final, schedule, command, epoch, metric, history_meta)
        save_bundle(out, final, network_def(config.preset, config.prediction, config.roi_normalised, final.scar_head,
                                            config.myocardium_input, **config.network), meta)
        summary.update(meta["scarenhance"]["training"])

    stop = threading.Event()
    timer = None
    if config.time_limit_min:
        timer = threading.Timer(config.time_limit_min * 60, stop.set)
        timer.daemon = True
        timer.start()
    watch = _either(cancel, stop)
    fit_config = FitConfig(
        epochs=config.epochs, checkpoint_dir=out / "training", log_dir=out / "training" / "tensorboard",
        metric_name="val_eps_mse", maximize=False, resume=resume, grad_clip=config.grad_clip, desc="train-diffusion",
        resume_lr=config.lr,  # --resume with another --lr continues at that rate (e.g. a lower final phase)
        amp=config.amp,
    )
    tic = time.perf_counter()
    try:
        step = make_train_step(schedule, config.t_max, config.whole_image, config.from_original, config.scar_weight,
                               config.myo_weight, config.snr_gamma, config.loss_norm, config.scar_head_weight)
        if config.crop_min:
            step = _in_random_windows(step, random_sides(config.crop_min, config.crop_size, net.multiple_of, config.seed + ctx.rank))
        result = fit(wrapped, optimizer, loader, step, validate, config=fit_config,
                     ctx=ctx, on_best=write_model, progress=progress, cancel=watch, log=log)
        stopped = "completed"
    except Cancelled:
        if not stop.is_set():
            raise  # the user cancelled: latest.pt and the best model so far stay on disk
        stopped = f"time limit of {config.time_limit_min} min reached"
        result = None
    finally:
        if timer is not None:
            timer.cancel()
        cleanup(ctx)
    summary.update(stopped=stopped, minutes=round((time.perf_counter() - tic) / 60, 2))
    if result is not None:
        summary["epochs_done"] = result.epochs_done
    if ctx.is_main:
        _record(out, summary)
        log(f"train-diffusion: {stopped}; best val ε-MSE {summary.get('best_val_eps_mse')} at epoch "
            f"{summary.get('best_epoch')}; model in {out}")
    return summary


def _network(config: DiffusionTrainConfig) -> ConditionalDenoiser:
    # the head exists only while a run trains it: fine-tuning without its loss drops it (_start_from)
    return ConditionalDenoiser(config.preset, config.prediction, config.roi_normalised, config.scar_head_weight > 0,
                               config.myocardium_input, **config.network)


def _metadata(config, net, schedule, command, epoch, metric, extra) -> dict:
    channels = {"0": "noisy target y_t", "1": "original slice x_0"}
    if config.myocardium_input:
        channels["2"] = "LV myocardium: +1 inside, -1 outside, 0 everywhere when unknown (diffusion.myocardium_input)"
    inputs = {"image": {"type": "image", "num_channels": net.conditions, "spatial_shape": [f"{net.multiple_of}*n", f"{net.multiple_of}*n"],
                        "value_range": [-1, 1], "channel_def": channels},
              "timestep": {"type": "tensor", "value_range": [0, schedule.num_train_timesteps - 1]}}
    if config.roi_normalised:
        inputs["roi"] = {"type": "image", "num_channels": 1, "value_range": [0, 1],
                         "channel_def": {"0": "heart ROI: only the statistics of x_0's third, z-scored copy (network.roi_zscores)"}}
    return {
        "version": "0.1.0",
        "name": "ScarEnhance localized conditional diffusion",
        "task": "myocardial scar enhancement in LGE MRI by localized partial diffusion (Hasny et al., MICCAI 2024)",
        "description": f"{config.prediction}-prediction DiffusionModelUNet ({config.preset}, {count_parameters(net) / 1e6:.2f} M "
                       "parameters); forward returns ε̂",
        "network_data_format": {
            "inputs": inputs,
            "outputs": {"pred": {"type": "image", "num_channels": 1, "channel_def": {"0": "predicted noise ε"}}},
        },
        "scarenhance": {
            "kind": "scar-diffusion",
            "preset": config.preset,
            "prediction": config.prediction,
            "roi_normalised": config.roi_normalised,
            "myocardium_input": config.myocardium_input,
            "scar_head": net.scar_head,  # a training-only output: forward returns ε̂ alone
            "multiple_of": net.multiple_of,
            "schedule": {"name": "linear_beta", "beta_start": 1e-4, "beta_end": 0.02, "num_train_timesteps": schedule.num_train_timesteps},
            "train_t_max": config.t_max,
            # the bounds of enhance_scar's window sides (enhance.training_windows)
            "train_crop_px": smallest_window(config),
            "train_crop_max_px": config.crop_size,
            "input_scaling": "each 2D slice min-max scaled to [0, 255] at native resolution, then x/127.5 - 1",
            "defaults": {"lam": config.lam, "k": config.k, "fast_steps": config.fast_steps},
            "training": {
                "command": command,
                "config": asdict(config),
                "best_epoch": None if epoch is None else epoch + 1,
                "best_val_eps_mse": metric,
                **extra,
            },
        },
    }


def _record(out: Path, summary: dict) -> None:
    """Merge the run's end state into the model's metadata without touching the weights."""
    from ..bundle import METADATA, atomic_write_bytes

    path = out / METADATA
    if not path.exists():
        return
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["scarenhance"]["training"].update({k: v for k, v in summary.items() if k in ("stopped", "minutes", "epochs_done")})
    atomic_write_bytes(path, json.dumps(meta, indent=2).encode())


def _start_from(net: ConditionalDenoiser, source: str, log: Callable[[str], None]) -> None:
    """Copy starting weights into `net`: from a diffusion model folder or registry id (checksum-verified),
    or from a train-diffusion checkpoint file (its EMA weights, e.g. RUN/training/latest.pt). The network
    must match this run's preset and overrides."""
    path = Path(source)
    if path.suffix == ".pt" and path.is_file():
        from ..training.checkpoint import read_checkpoint

        weights = ema_weights(read_checkpoint(path)["model"])
        if not weights:
            raise InputError("not a train-diffusion checkpoint: it holds no EMA weights", path)
        try:
            net.load_state_dict(_with_outputs(weights, net))
        except RuntimeError as e:
            raise InputError(f"--init-from checkpoint does not fit this network; use the same --preset ({e})", path) from e
        log(f"train-diffusion: starting from the EMA weights of {path}")
        return
    from .enhance import load_diffusion_model

    model = load_diffusion_model(source)
    theirs, ours = (json.loads(json.dumps(getattr(m, "config", None))) for m in (model, net))  # tuples vs JSON lists
    if theirs != ours:
        raise InputError(f"--init-from model has network {theirs}, this run builds {ours}; use the same --preset", source)
    inputs = (("roi_normalised", "--roi-normalised", "ROI-normalised"), ("myocardium_input", "--myocardium-input", "myocardium"))
    for name, flag, label in inputs:
        if getattr(model, name, False) and not getattr(net, name):
            raise InputError(f"--init-from model takes the {label} input; pass {flag}", source)
    if getattr(model, "myocardium_input", False) and net.roi_normalised and not getattr(model, "roi_normalised", False):
        # the U-Net's inputs are y_t, x_0, (z-scores), (myocardium): widening appends at the end only
        raise InputError("--init-from model takes the myocardium but not the ROI-normalised input, which would have to "
                         "come before it; start from a model without the myocardium input", source)
    added = [label for name, _, label in inputs if getattr(net, name) and not getattr(model, name, False)]
    state = _widened_inputs(model.state_dict(), net.state_dict()) if added else model.state_dict()
    net.load_state_dict(_with_outputs(state, net))
    if added:
        log(f"train-diffusion: the {' and '.join(added)} input starts with zero weights: the network starts as the one it comes from")
    if net.scar_head != getattr(model, "scar_head", False):
        log(f"train-diffusion: scar head {'added, its weights at zero' if net.scar_head else 'dropped'}; ε̂ starts as the model's")
    theirs = getattr(model, "prediction", "epsilon")
    if theirs != net.prediction:  # the features carry over; the output layer's meaning does not
        net.zero_output()
        log(f"train-diffusion: starting from the weights of {model.model_dir} ({theirs}-prediction), output layer "
            f"zeroed for {net.prediction}-prediction")
        return
    log(f"train-diffusion: starting from the weights of {model.model_dir}")


def _widened_inputs(theirs: dict, ours: dict) -> dict:
    """`theirs` with every weight that has fewer input channels than ours (the first convolution) padded with
    zeros: the added input then changes nothing until training gives it weight."""
    out = dict(theirs)
    for key, value in theirs.items():
        want = ours[key].shape
        if value.ndim >= 2 and value.shape[1] < want[1] and value.shape[:1] + value.shape[2:] == want[:1] + want[2:]:
            pad = torch.zeros(want, dtype=value.dtype)
            pad[:, : value.shape[1]] = value
            out[key] = pad
    return out


def _with_outputs(theirs: dict, net: ConditionalDenoiser) -> dict:
    """`theirs` with the last convolution cut or zero-padded to `net`'s number of output channels (a scar head
    added or dropped); channel 0, ε̂, is kept as it is. No other weight is touched: any other mismatch is
    load_state_dict's to report."""
    out = dict(theirs)
    prefix = f"unet.out.{len(net.unet.out) - 1}."
    for name, ours in net.unet.out[-1].named_parameters():
        value = theirs.get(prefix + name)
        if value is not None and value.shape != ours.shape and value.shape[1:] == ours.shape[1:]:
            fitted = torch.zeros(ours.shape, dtype=value.dtype)
            n = min(value.shape[0], ours.shape[0])
            fitted[:n] = value[:n]
            out[prefix + name] = fitted
    return out


def _roi_function(config: DiffusionTrainConfig, device: str):
    if config.roi_source == "labels":
        return None
    if config.roi_source == "randomized":  # roi_randomization.py: the ROI's outline carries no information
        return lambda case: _randomized_roi(case, config.seed)
    if config.roi_source != "model":
        raise InputError(f"roi_source must be 'labels', 'randomized' or 'model', got {config.roi_source!r}")
    from ..segmentation import load_segmentation_model, segment_heart

    seg = load_segmentation_model(config.seg_model)
    return lambda case: segment_heart(case.image, model=seg, device=device)


def _randomized_roi(case, seed: int):
    import SimpleITK as sitk

    from ..geometry import slice_axes
    from .roi_randomization import randomized_roi_volume

    roi = randomized_roi_volume(sitk.GetArrayFromImage(case.labels), case.labels.GetSpacing()[::-1],
                                slice_axes(case.labels)[0], seed, str(case.name))
    image = sitk.GetImageFromArray(roi.astype(np.uint8))
    image.CopyInformation(case.labels)
    return image


class _either:
    """A cancel event that is set when either of two events is (for training.fit's `cancel`)."""

    def __init__(self, a: "threading.Event | None", b: threading.Event):
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return (self.a is not None and self.a.is_set()) or self.b.is_set()
