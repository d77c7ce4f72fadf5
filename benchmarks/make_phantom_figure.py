"""Figure of synthetic LGE phantoms: mid-ventricular slices of several cases with their label contours.

    python benchmarks/make_phantom_figure.py [--seeds 1 2 3 4 5 6] [--out Resources/Screenshots/phantoms.png]

Each panel shows one case's slice through the middle of its scar (or of the stack when it has none),
windowed to the 0.5–99.5 % intensity range, with contours of LV cavity (yellow), myocardium (green),
infarct (red) and no-reflow (cyan), and a title with pattern, TI quality and measured contrast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ScarEnhance"))

from scarenhance.phantom import generate_case  # noqa: E402

CONTOURS = ((1, "#ffd21f"), (2, "#38d94a"), (3, "#ff3b30"), (4, "#3ad7ff"))
DEFAULT_OVERRIDES = ({}, {"scar_pattern": "subendocardial"}, {"scar_pattern": "no_reflow"},
                     {"scar_pattern": "mid_wall"}, {"scar_pattern": "rv_insertion", "hcm": True},
                     {"scar_pattern": "transmural", "ti_quality": "poor"})


def panel(case):
    """(slice (H, W), labels (H, W), title) of the most telling slice of a case."""
    import SimpleITK as sitk

    img = sitk.GetArrayFromImage(case.image).astype(np.float32)
    lab = sitk.GetArrayFromImage(case.labels)
    scar_slices = case.info["scar"]["slices"]
    heart_slices = np.flatnonzero((lab > 0).any(axis=(1, 2)))
    k = scar_slices[len(scar_slices) // 2] if scar_slices else int(heart_slices[len(heart_slices) // 2])
    info = case.info
    m = info["measured"]
    ratio = f", scar/myo {m['scar_myo_ratio']:.1f}" if m["scar_myo_ratio"] else ""
    W, H, n = info["size"]
    title = (f"{info['scar']['pattern'].replace('_', ' ')}{' · HCM' if info['anatomy']['hcm'] else ''}\n"
             f"TI {info['acquisition']['ti_ms']:.0f} ms ({info['acquisition']['ti_quality']}){ratio}\n"
             f"{W}×{H}×{n} px, {info['spacing'][0]:.2f}×{info['spacing'][2]:.1f} mm, slice {k + 1}/{n}")
    return img[k], lab[k], title


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13, 14, 15, 16])
    parser.add_argument("--out", type=Path, default=ROOT / "Resources" / "Screenshots" / "phantoms.png")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(args.seeds)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(4.4 * cols, 2.9 * rows), dpi=100)
    axes = np.atleast_2d(axes)
    for i, seed in enumerate(args.seeds):
        overrides = DEFAULT_OVERRIDES[i % len(DEFAULT_OVERRIDES)] if args.seeds == parser.get_default("seeds") else {}
        img, lab, title = panel(generate_case(seed, **overrides))
        lo, hi = np.percentile(img, (0.5, 99.5))
        r, c = divmod(i, cols)
        ax_img, ax_lab = axes[r, 2 * c], axes[r, 2 * c + 1]
        ax_img.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax_img.set_title(title, fontsize=7, loc="left")
        ax_lab.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        for value, colour in CONTOURS:
            if (lab == value).any():
                ax_lab.contour(lab == value, levels=[0.5], colors=colour, linewidths=0.7)
        ax_lab.set_title(f"labels (seed {seed})", fontsize=7, loc="left")
        # zoom the contour panel on the heart
        ys, xs = np.nonzero(lab)
        if len(xs):
            half = max(np.ptp(xs), np.ptp(ys)) * 0.9 + 10
            cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
            ax_lab.set_xlim(cx - half, cx + half)
            ax_lab.set_ylim(cy + half, cy - half)
        for ax in (ax_img, ax_lab):
            ax.set_xticks([])
            ax.set_yticks([])
    for j in range(n, rows * cols):
        r, c = divmod(j, cols)
        axes[r, 2 * c].axis("off")
        axes[r, 2 * c + 1].axis("off")
    fig.suptitle("Synthetic LGE phantoms (scarenhance phantom): full slice and heart close-up with labels — "
                 "cavity yellow, myocardium green, infarct red, no-reflow cyan", fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
