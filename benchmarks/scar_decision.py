"""How hard is the enhancer's decision where to brighten? Scar Dice per family, on the slices with scar.

The gamma targets brighten scar and nothing else in the myocardium, so before it can enhance, the denoiser
must find the scar: a segmentation it makes for itself, from the original slice and the heart ROI. This
benchmark measures how well that decision can be made, four ways:

- `otsu-myocardium`: Otsu's threshold over the labelled myocardium (scar counted in), pixels above it called
  scar. What a rule does once the myocardium is known.
- `otsu-roi`: the same over the whole heart ROI, which is all the enhancer is given: blood is as bright as scar.
- `otsu-heart-model-myocardium` (`--heart-model`, the shipped one by default): the same over the myocardium
  the heart model segments (scar counted as myocardium), which is what a real session has before the
  radiologist corrects it; with it, the share of scar voxels the heart model calls blood pool.
- `--model M`: a denoiser trained with `--scar-head-weight`: its own scar logits (> 0, inside the ROI), at
  t = 100 from a noised original as in partial diffusion. Whether the denoiser's features carry the decision.
- `--probe-data DIR --probe-minutes N`: a plain MONAI UNet (the heart model's size) trained here for N minutes
  on DIR's crops (the denoiser's own training crops: randomized ROI, scar-centred) with Dice + cross-entropy,
  given the original and, with `--probe-input roi`, the ROI or, with `myo`, the labelled myocardium.
  Whether a network made for the task learns it in that time. It trains with --seed (its split of DIR, its
  crops, its weights), so a run repeats up to the number of steps the minutes allow.

Families are those of evaluation/families.py; only their LGE-contrast cases count (in the random-contrast
half of `synth-unseen` the scar need not be bright). Each slice is cut to a 128-px window around its heart.

    .venv/bin/python benchmarks/scar_decision.py [--model DIR] [--probe-data DIR --probe-minutes 18
        --probe-input roi] [--data DIR] [--cases 12] [--seed 9201] [--json benchmarks/results/scar_decision.json]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ScarEnhance"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from enh_families import _label_image, dataset_cases  # noqa: E402
from repo_paths import add_family_options, apply_threads, repo_relative, write_result  # noqa: E402
from scarenhance import labels as L  # noqa: E402
from scarenhance.evaluation.families import family_cases  # noqa: E402
from scarenhance.evaluation import metrics  # noqa: E402
from scarenhance.evaluation.metrics import dice  # noqa: E402
from scarenhance.geometry import labels_to_slices, volume_to_slices  # noqa: E402

WINDOW = 128  # px a side around each heart: the denoiser's training crops
PROBE_T = 100  # the scar head is read at this step of a partial-diffusion chain


def heart_windows(case, side: int = WINDOW, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, side, side) of the slices on the per-slice [0, 255] scale and their labels (the case's canonical
    ones, or `labels`, a label array on the image's grid), each a window centred on the case's labelled
    heart (edge-padded image, background-padded labels)."""
    stack = volume_to_slices(case.image)
    truth = labels_to_slices(_label_image(case.labels, case.image), stack)
    ys, xs = np.nonzero(L.heart_mask(truth).any(axis=0))
    cy, cx, h = int(ys.mean()), int(xs.mean()), side // 2
    pad = ((0, 0), (h, h), (h, h))
    image = np.pad(stack.slices.astype(np.float32), pad, mode="edge")[:, cy:cy + side, cx:cx + side]
    wanted = truth if labels is None else labels_to_slices(_label_image(labels, case.image), stack)
    return image, np.pad(wanted, pad)[:, cy:cy + side, cx:cx + side]


def otsu_scar(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Pixels of `region` above Otsu's threshold of its intensities."""
    values = image[region].astype(np.float32)
    if values.size == 0 or np.ptp(values) == 0:
        return np.zeros_like(region)
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.SetInsideValue(0)
    otsu.SetOutsideValue(1)
    otsu.Execute(sitk.GetImageFromArray(values.reshape(1, -1)))
    return region & (image > otsu.GetThreshold())


def myocardium(labels: np.ndarray) -> np.ndarray:
    return np.isin(labels, (L.MYOCARDIUM, L.SCAR))


def heart_model_classes(seg_model, case) -> np.ndarray:
    """The heart model's classes (0 background, 1 LV blood pool, 2 LV myocardium) of `case`, on its grid."""
    from scarenhance.segmentation.infer import segment

    return sitk.GetArrayFromImage(segment(case.image, seg_model, device="cpu").labels)


def heart_model_scar(classes: np.ndarray, case, image: np.ndarray) -> np.ndarray:
    """Otsu over the myocardium of the heart model's `classes` (in the windows heart_windows cuts)."""
    _, windows = heart_windows(case, image.shape[-1], labels=classes)
    return otsu_scar(image, windows == L.CLASS_MYOCARDIUM)


def scar_called_blood(classes_of, items) -> float:
    """Mean over LGE-contrast cases with scar of the share of scar voxels the heart model calls blood pool."""
    shares = [metrics.scar_called_blood(classes_of(c), c.labels) for c in items if c.contrast == "lge"]
    shares = [s for s in shares if not np.isnan(s)]
    return float(np.mean(shares)) if shares else float("nan")


def head_scar(net, image: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """A scar-head denoiser's decision: logits > 0 inside the ROI, at t = PROBE_T of a noised original."""
    from scarenhance.diffusion.noise import add_localized_noise
    from scarenhance.diffusion.schedule import make_schedule

    x0 = torch.from_numpy(image / 127.5 - 1.0)[:, None].float()
    m = torch.from_numpy(roi.astype(np.float32))[:, None]
    t = torch.full((x0.shape[0],), PROBE_T)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    yt = add_localized_noise(x0, m, eps, t, make_schedule())
    with torch.no_grad():
        _, logits = net(torch.cat([yt, x0], dim=1), t, m, with_scar=True)
    return (logits[:, 0].numpy() > 0) & roi


def probe_inputs(image: torch.Tensor, roi: torch.Tensor, myo: torch.Tensor, which: str) -> torch.Tensor:
    return torch.cat([image, roi if which == "roi" else myo], dim=1)


def train_probe(data: str, minutes: float, which: str, seed: int, log=print):
    """A MONAI UNet (the heart model's widths) trained for `minutes` on the denoiser's training crops of `data`."""
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet
    from scarenhance.datasets import list_cases, load_case
    from scarenhance.diffusion.data import CropDataset, slice_pairs
    from scarenhance.diffusion.train import _randomized_roi, split_cases

    torch.manual_seed(seed)
    train, _ = split_cases([str(n) for n in list_cases(data)], 0.15, seed)
    cases = [load_case(data, n) for n in train]
    pairs = slice_pairs(cases, roi_fn=lambda case: _randomized_roi(case, seed))
    crops = CropDataset(pairs, WINDOW, length=10**7, seed=seed, scar_focus=0.5)
    net = UNet(2, 2, 1, channels=(24, 48, 96, 192, 384), strides=(2, 2, 2, 2), num_res_units=1, norm="batch")
    optimizer, loss_fn = torch.optim.Adam(net.parameters(), 1e-3), DiceCELoss(sigmoid=True)
    tic, steps = time.perf_counter(), 0
    for batch in torch.utils.data.DataLoader(crops, batch_size=16):
        m = batch["mask"]
        logits = net(probe_inputs(batch["x0"], m, batch["myo"] + batch["scar"], which))
        loss = loss_fn(logits * m - 20.0 * (1 - m), batch["scar"] * m)  # only the ROI's pixels are asked
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        if steps % 100 == 0:
            log(f"probe step {steps}: loss {loss.item():.3f}, {time.perf_counter() - tic:.0f} s")
        if time.perf_counter() - tic > minutes * 60:
            break
    return net.eval(), steps


def probe_scar(net, which: str, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    roi = L.heart_mask(labels)
    as_tensor = lambda a: torch.from_numpy(a.astype(np.float32))[:, None]  # noqa: E731
    with torch.no_grad():
        logits = net(probe_inputs(as_tensor(image / 127.5 - 1.0), as_tensor(roi), as_tensor(myocardium(labels)), which))
    return (logits[:, 0].numpy() > 0) & roi


def family_dice(items, deciders: dict) -> dict:
    """Mean over scar slices (≥ 5 scar pixels) of each decider's scar Dice, and how many slices there were.
    deciders: name → decide(image, labels, case) -> scar mask of the windows."""
    scores = {name: [] for name in deciders}
    for case in items:
        if case.contrast != "lge":
            continue
        image, labels = heart_windows(case)
        decided = {name: decide(image, labels, case) for name, decide in deciders.items()}
        for s in range(labels.shape[0]):
            scar = labels[s] == L.SCAR
            if scar.sum() < 5:
                continue
            for name in deciders:
                scores[name].append(dice(decided[name][s], scar))
    n = len(next(iter(scores.values())))
    return {"scar_slices": n, **{name: float(np.mean(v)) if v else float("nan") for name, v in scores.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_family_options(ap, "scar-head diffusion", cases=12, json_default="benchmarks/results/scar_decision.json")
    ap.add_argument("--data", metavar="DIR", help="also measure the first --cases cases of this labelled dataset")
    ap.add_argument("--heart-model", default=None, help="heart model folder or id (default: the shipped one)")
    ap.add_argument("--probe-data", metavar="DIR", help="train the probe UNet on this dataset's crops")
    ap.add_argument("--probe-minutes", type=float, default=18.0)
    ap.add_argument("--probe-input", choices=("roi", "myo"), default="roi")
    args = ap.parse_args(argv)
    apply_threads(args)

    from scarenhance.segmentation.infer import load_segmentation_model

    seg_model, segmented = load_segmentation_model(args.heart_model), {}

    def classes_of(case):  # each case segmented once
        if case.name not in segmented:
            segmented[case.name] = heart_model_classes(seg_model, case)
        return segmented[case.name]
    deciders = {"otsu-myocardium": lambda image, labels, case: otsu_scar(image, myocardium(labels)),
                "otsu-roi": lambda image, labels, case: otsu_scar(image, L.heart_mask(labels)),
                "otsu-heart-model-myocardium": lambda image, labels, case: heart_model_scar(classes_of(case), case, image)}
    out = {"benchmark": "scar_decision", "heart_model": f"{seg_model.metadata.get('name')} {seg_model.metadata.get('version')}",
           "heart_model_folder": repo_relative(seg_model.path),
           "seed": args.seed, "cases_per_family": args.cases, "window_px": WINDOW,
           "threads": torch.get_num_threads(), "platform": platform.platform()}
    if args.model:
        from scarenhance.diffusion import load_diffusion_model

        net = load_diffusion_model(args.model).eval()
        if not getattr(net, "scar_head", False):
            ap.error(f"{args.model} has no scar head: train it with --scar-head-weight")
        deciders["scar-head"] = lambda image, labels, case: head_scar(net, image, L.heart_mask(labels))
        out.update(model=repo_relative(net.model_dir), model_version=net.metadata.get("version"), head_t=PROBE_T)
    if args.probe_data:
        probe, steps = train_probe(args.probe_data, args.probe_minutes, args.probe_input, args.seed)
        deciders[f"probe-unet-{args.probe_input}"] = lambda image, labels, case: probe_scar(probe, args.probe_input, image, labels)
        out["probe"] = {"data": repo_relative(args.probe_data), "minutes": args.probe_minutes, "steps": steps,
                        "batch": 16, "input": args.probe_input}
    groups = [(f, list(family_cases(f, args.cases, args.seed))) for f in args.families.split(",")]
    if args.data:
        groups.append((Path(args.data).name, dataset_cases(args.data, args.cases)))
    rows = []
    for name, items in groups:
        segmented.clear()  # case names repeat across families
        rows.append({"family": name, **family_dice(items, deciders),
                     "scar_called_blood_by_heart_model": scar_called_blood(classes_of, items)})
        print(f"{name:18s} {rows[-1]['scar_slices']:3d} scar slices  "
              + "  ".join(f"{d} {rows[-1][d]:.3f}" for d in deciders)
              + f"  (scar the heart model calls blood: {rows[-1]['scar_called_blood_by_heart_model']:.0%})", flush=True)
    out["families"] = rows
    write_result(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
