"""Speed of the synthetic LGE generator: seconds per case by image size, and cases per second.

    python benchmarks/phantom_speed.py [--cases 60] [--json benchmarks/results/phantom_speed.json]

Target: < 0.5 s per typical case on one CPU core, so training can draw hundreds of cases.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ScarEnhance"))

from scarenhance.phantom import generate_case  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "phantom_speed.json")
    args = parser.parse_args(argv)

    generate_case(0)  # warm-up: imports, allocator
    rows = []
    for seed in range(1, args.cases + 1):
        t = time.perf_counter()
        case = generate_case(seed)
        W, H, n = case.info["size"]
        rows.append({"seed": seed, "voxels": W * H * n, "size": [W, H, n], "seconds": time.perf_counter() - t})
    secs = np.array([r["seconds"] for r in rows])
    mvox = np.array([r["voxels"] for r in rows]) / 1e6
    bins = [(0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 5.0)]
    print(f"{'voxels (M)':>12} {'cases':>6} {'median s':>9} {'max s':>7}")
    table = []
    for lo, hi in bins:
        sel = (mvox >= lo) & (mvox < hi)
        if sel.any():
            table.append({"mvoxels": [lo, hi], "cases": int(sel.sum()), "median_s": float(np.median(secs[sel])),
                          "max_s": float(secs[sel].max())})
            print(f"{f'{lo}-{hi}':>12} {int(sel.sum()):>6} {np.median(secs[sel]):>9.3f} {secs[sel].max():>7.3f}")
    summary = {"cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "cases": len(rows), "median_s": float(np.median(secs)), "p90_s": float(np.percentile(secs, 90)),
               "max_s": float(secs.max()), "cases_per_s": float(len(rows) / secs.sum()), "by_size": table}
    print(f"all: median {summary['median_s']:.3f} s, 90th percentile {summary['p90_s']:.3f} s, "
          f"max {summary['max_s']:.3f} s, {summary['cases_per_s']:.1f} cases/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"summary": summary, "cases": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
