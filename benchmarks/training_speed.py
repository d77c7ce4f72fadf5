"""How long `scarenhance train` takes: measured CPU cost per training step, FLOPs, and GPU estimates.

The CPU columns are the networks' compute only: the trainers also spend time on data augmentation,
validation and checkpoints (the model folders' metadata record real run times). Measure on an idle
machine: a shared one inflates every number here.

For each preset (cpu-small, gpu-paper) and each trained network (heart U-Net, diffusion denoiser):
- FLOPs of one training step (forward + backward) at the preset's batch and crop, counted by
  torch.utils.flop_counter (an optimizer step adds well under 1 %);
- measured seconds per step on this machine's CPU (median of --repeats steps after a warm-up), under the
  precision the trainers use here (bf16 autocast on a CPU with AMX or AVX512-BF16, else fp32; --no-amp:
  fp32 always), and the
  process CPU time per step: on a machine shared with other jobs, CPU time / threads is a better
  guess of what an idle machine does than the wall time;
- the evaluation's cost per slice: diffusion forwards at a typical ROI crop (k samples × steps).
Then a data set of --cases cases × --slices slices (80 % training) gives per-epoch and whole-run times:
CPU from the measurement, GPU from FLOPs at an assumed sustained throughput (--gpu-tflops: what small
2D U-Nets reach in bf16, far below a GPU's peak) — GPU numbers are estimates, labelled as such.

    .venv/bin/python benchmarks/training_speed.py [--presets cpu-small gpu-paper] [--threads 2]
        [--cases 100 --slices 8] [--gpu-tflops 60] [--json benchmarks/results/training_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ScarEnhance"))

from scarenhance.device import autocast_dtype, precision_name  # noqa: E402
from scarenhance.diffusion.network import ConditionalDenoiser  # noqa: E402
from scarenhance.pipeline import PRESETS  # noqa: E402
from scarenhance.segmentation import network as seg_network  # noqa: E402
from scarenhance.training import autocast  # noqa: E402

CPU = torch.device("cpu")


def seg_step(preset: str, amp: bool):
    p = seg_network.PRESETS[preset]
    net = seg_network.build(seg_network.network_def(preset))
    x = torch.rand(p["batch_size"], 1, p["crop"], p["crop"])
    with torch.no_grad():  # one channel per class of the network
        y = (torch.rand_like(net(x)) > 0.5).float()
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def step():
        opt.zero_grad()
        with autocast(CPU, amp):  # as training.fit runs a step
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x).float(), y)
        loss.backward()
        opt.step()

    return net, step, {"batch": p["batch_size"], "crop": p["crop"], "epochs": p["epochs"]}


def diffusion_step(preset: str, amp: bool):
    d = PRESETS[preset]["diffusion"]
    net = ConditionalDenoiser(d["preset"])
    b, s = d["batch_size"], d["crop_size"]
    x = torch.randn(b, 2, s, s)
    t = torch.randint(0, 1000, (b,))
    opt = torch.optim.AdamW(net.parameters(), 1e-4)

    def step():
        opt.zero_grad()
        with autocast(CPU, amp):
            loss = ((net(x, t).float() - x[:, :1]) ** 2).mean()
        loss.backward()
        opt.step()

    return net, step, {"batch": b, "crop": s, "epochs": d["epochs"]}


def count_flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall s, median process CPU s) per call, after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=["cpu-small", "gpu-paper"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", type=int, default=100, help="data set size for the totals (EMIDEC has 100)")
    ap.add_argument("--slices", type=int, default=8, help="short-axis slices per case")
    ap.add_argument("--eval-crop", type=int, default=128, help="typical ROI crop side at inference (native pixels)")
    ap.add_argument("--gpu-tflops", type=float, default=60.0,
                    help="assumed sustained bf16 TFLOP/s of a modern data-centre GPU on these small U-Nets")
    ap.add_argument("--time-repeats-for", nargs="*", default=["cpu-small"],
                    help="presets whose CPU step is timed (gpu-paper steps take minutes on a CPU: FLOPs only by default)")
    ap.add_argument("--no-amp", dest="amp", action="store_false", help="time fp32 steps even where the CPU has bf16")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "training_speed.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    train_slices = int(0.8 * args.cases * args.slices)
    rows, results = [], {"machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "load_avg": os.getloadavg(),
                                      "python": platform.python_version(), "torch": torch.__version__,
                                      "training_precision": precision_name(autocast_dtype(CPU) if args.amp else None)},
                         "assumptions": {"cases": args.cases, "slices_per_case": args.slices, "train_slices": train_slices,
                                         "gpu_tflops": args.gpu_tflops, "eval_crop": args.eval_crop}, "presets": {}}
    for preset in args.presets:
        out = results["presets"][preset] = {}
        for name, make in (("segmentation", seg_step), ("diffusion", diffusion_step)):
            net, step, info = make(preset, args.amp)
            wall = cpu = None
            if preset in args.time_repeats_for:  # timed before any FLOP counting: timings in one long process drifted up to 20×
                wall, cpu = timed(step, args.repeats)
            flops = count_flops(step)
            steps_per_epoch = max(1, train_slices // info["batch"])  # one crop per training slice per epoch
            epoch_flops = flops * steps_per_epoch
            entry = {**info, "params_m": sum(p.numel() for p in net.parameters()) / 1e6, "step_gflop": flops / 1e9,
                     "step_wall_s": wall, "step_cpu_s": cpu, "steps_per_epoch": steps_per_epoch,
                     "cpu_epoch_min_idle": None if cpu is None else cpu / args.threads * steps_per_epoch / 60,
                     "gpu_epoch_s_est": epoch_flops / (args.gpu_tflops * 1e12),
                     "gpu_total_min_est": epoch_flops * info["epochs"] / (args.gpu_tflops * 1e12) / 60}
            if entry["cpu_epoch_min_idle"] is not None:
                entry["cpu_total_h_idle"] = entry["cpu_epoch_min_idle"] * info["epochs"] / 60
            out[name] = entry
            rows.append((preset, name, entry))
        # evaluation: diffusion forwards per slice at a typical ROI crop
        net = ConditionalDenoiser(PRESETS[preset]["diffusion"]["preset"]).eval()
        x = torch.randn(1, 2, args.eval_crop, args.eval_crop)
        t = torch.tensor([100])
        with torch.inference_mode():
            fwd_wall, fwd_cpu = timed(lambda: net(x, t), args.repeats) if preset in args.time_repeats_for else (None, None)
            fwd_flops = count_flops(lambda: net(x, t))
        ev = PRESETS[preset]["evaluation"]
        calls = ev["k"] * (ev["steps"] or ev["lam"])
        out["evaluation"] = {"forward_gflop": fwd_flops / 1e9, "forward_cpu_s": fwd_cpu, "forward_wall_s": fwd_wall,
                             "network_calls_per_slice": calls,
                             "cpu_s_per_slice_idle": None if fwd_cpu is None else fwd_cpu / args.threads * calls,
                             "gpu_s_per_slice_est": fwd_flops * calls / (args.gpu_tflops * 1e12)}

    print(f"{'preset':10s} {'network':13s} {'params':>7s} {'GFLOP/step':>10s} {'CPU s/step':>10s} "
          f"{'CPU min/epoch':>13s} {'CPU h total':>11s} {'GPU s/epoch*':>12s} {'GPU min total*':>14s}")
    for preset, name, e in rows:
        cpu_step = "–" if e["step_cpu_s"] is None else f"{e['step_cpu_s'] / args.threads:.2f}"
        cpu_epoch = "–" if e["cpu_epoch_min_idle"] is None else f"{e['cpu_epoch_min_idle']:.1f}"
        cpu_total = "–" if e.get("cpu_total_h_idle") is None else f"{e['cpu_total_h_idle']:.1f}"
        print(f"{preset:10s} {name:13s} {e['params_m']:6.1f}M {e['step_gflop']:10.1f} {cpu_step:>10s} {cpu_epoch:>13s} "
              f"{cpu_total:>11s} {e['gpu_epoch_s_est']:12.1f} {e['gpu_total_min_est']:14.1f}")
    for preset in args.presets:
        ev = results["presets"][preset]["evaluation"]
        cpu = "–" if ev["cpu_s_per_slice_idle"] is None else f"{ev['cpu_s_per_slice_idle']:.0f} s"
        print(f"{preset}: evaluation {ev['network_calls_per_slice']} network calls per slice at {args.eval_crop}² "
              f"({ev['forward_gflop']:.1f} GFLOP each): CPU {cpu}, GPU* {ev['gpu_s_per_slice_est']:.2f} s per slice")
    print(f"* estimated from FLOPs at {args.gpu_tflops:g} TFLOP/s sustained; CPU columns: process CPU time / "
          f"{args.threads} threads (an idle machine), data set {args.cases} cases × {args.slices} slices")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
