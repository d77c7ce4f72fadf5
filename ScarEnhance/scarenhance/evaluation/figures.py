"""The report's PNG figures (matplotlib, Agg backend, no display needed).

- cases.png: per case, original / gamma target / output / uncertainty (SD of the k samples), zoomed on
  the heart; scar outlined on the original, ROI outlined on the output; CNR(scar, myo) in each panel.
- lambda_curve.png: CNR(scar, myo) against λ for the sweep cases (paper Fig. 2).
- cnr_scatter.png: per-slice CNR before (original) vs after (output, and the target) for both tissue pairs.
- overview.png: one case's panels above the λ curve and the scatter: the picture for a README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..labels import SCAR

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
COLUMN_TITLES = ("original", "gamma target", "ScarEnhance output", "uncertainty (SD)")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "figure.dpi": 110})
    return plt


def write_figures(report: dict, panels: list, out_dir: "str | Path", highlight=None) -> list[Path]:
    """Write every figure that has data; returns their paths. highlight: the panel of overview.png
    (default: the first)."""
    highlight = highlight or (panels[0] if panels else None)
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    jobs = [("cases.png", panels and (lambda: case_panels(plt, panels))),
            ("lambda_curve.png", (report.get("lambda_sweep") or {}).get("cases") and (lambda: lambda_curve(plt, report))),
            ("cnr_scatter.png", report["summary"]["n_slices_with_scar"] and (lambda: cnr_scatter(plt, report))),
            ("overview.png", panels and report["summary"]["n_slices_with_scar"] and (lambda: overview(plt, report, highlight)))]
    for name, make in jobs:
        if not make:
            continue
        fig = make()
        fig.savefig(out / name, bbox_inches="tight", facecolor="white")
        plt.close(fig)
        written.append(out / name)
    return written


def _show_case(axes, panel, plt, with_titles: bool, with_colorbar: bool = True) -> None:
    """Four panels of one case on `axes` (a row of 4 Axes)."""
    window = float(np.percentile(np.concatenate([panel.original.ravel(), panel.target.ravel(), panel.output.ravel()]), 99.5))
    images = (panel.original, panel.target, panel.output)
    cnrs = (panel.cnr.get("original"), panel.cnr.get("target"), panel.cnr.get("output"))
    for j, (ax, image, value) in enumerate(zip(axes[:3], images, cnrs)):
        ax.imshow(image, cmap="gray", vmin=0, vmax=max(window, 1.0), interpolation="nearest")
        if j == 0:
            ax.contour(panel.labels == SCAR, levels=[0.5], colors=["#ffd700"], linewidths=0.8)
        if j == 2:
            ax.contour(panel.roi, levels=[0.5], colors=["#00bfff"], linewidths=0.6, linestyles="dashed")
        if value is not None:
            ax.text(0.03, 0.04, f"CNR(scar,myo) {value:.2f}", transform=ax.transAxes, color="white", fontsize=8,
                    bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.5, "edgecolor": "none"})
    im = axes[3].imshow(panel.std, cmap="magma", vmin=0, interpolation="nearest")
    if with_colorbar:
        plt.colorbar(im, ax=axes[3], fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    for ax, title in zip(axes, COLUMN_TITLES):
        ax.set_xticks([])
        ax.set_yticks([])
        if with_titles:
            ax.set_title(title)
    axes[0].set_ylabel(f"{panel.case}\nslice {panel.index}", fontsize=8)


def case_panels(plt, panels: list):
    fig, axes = plt.subplots(len(panels), 4, figsize=(10, 2.6 * len(panels) + 0.4), squeeze=False)
    for i, panel in enumerate(panels):
        _show_case(axes[i], panel, plt, with_titles=i == 0)
    fig.suptitle("Slices with the most scar (scar outlined in yellow, ROI dashed in blue; SD on the [0, 255] scale)", fontsize=9)
    fig.tight_layout()
    return fig


def _lambda_axes(ax, report: dict) -> None:
    sweep = report["lambda_sweep"]
    for color, case in zip(COLORS * 4, sweep["cases"]):
        values = [np.nan if v is None else v for v in case["cnr_scar_myo"]]
        ax.plot(sweep["lams"], values, "o-", color=color, ms=3.5, label=f"{case['name']} ({case['scar_burden_pct']:.0f} % scar)")
        if case["original"]["cnr_scar_myo"] is not None:
            ax.axhline(case["original"]["cnr_scar_myo"], color=color, ls="--", lw=0.9, alpha=0.8)
        if case["target"]["cnr_scar_myo"] is not None:
            ax.axhline(case["target"]["cnr_scar_myo"], color=color, ls=":", lw=1.1, alpha=0.8)
    ax.axvline(report["settings"]["lam"], color="gray", lw=0.8)
    ax.set_xlabel("λ (noise step where the reverse chain starts)")
    ax.set_ylabel("CNR(scar, myo)")
    ax.set_title("CNR against λ  (dashed: original, dotted: target)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)


def lambda_curve(plt, report: dict):
    fig, ax = plt.subplots(figsize=(6, 4))
    _lambda_axes(ax, report)
    fig.tight_layout()
    return fig


def _scatter_axes(ax, report: dict, key: str, title: str) -> None:
    before, after, target = [], [], []
    for case in report["cases"]:
        for s in case["slices"]:
            if s["has_scar"] and s["original"][key] is not None:
                before.append(s["original"][key])
                after.append(s["output"][key] if s["output"][key] is not None else np.nan)
                target.append(s["target"][key] if s["target"][key] is not None else np.nan)
    ax.scatter(before, target, s=14, marker="x", color="#999999", label="gamma target", zorder=2)
    ax.scatter(before, after, s=18, color="#d62728", label="output", zorder=3)
    finite = [v for v in before + after + target if np.isfinite(v)]
    hi = max(finite) * 1.05 if finite else 1.0
    ax.plot([0, hi], [0, hi], color="black", lw=0.8, label="no change")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{title}, original")
    ax.set_ylabel(f"{title}, enhanced")
    above = int(np.sum(np.array(after) > np.array(before)))
    ax.set_title(f"{title}: {above}/{len(before)} slices improved")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)


def cnr_scatter(plt, report: dict):
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4))
    _scatter_axes(axes[0], report, "cnr_scar_myo", "CNR(scar, myo)")
    _scatter_axes(axes[1], report, "cnr_scar_blood", "CNR(scar, blood)")
    fig.tight_layout()
    return fig


def overview(plt, report: dict, panel):
    """One figure for the README: a case's four panels, then λ curve (if any) and the CNR scatter."""
    has_sweep = bool((report.get("lambda_sweep") or {}).get("cases"))
    fig = plt.figure(figsize=(10, 6.6))
    grid = fig.add_gridspec(2, 4, height_ratios=[1, 1.35], hspace=0.22, wspace=0.12)
    _show_case([fig.add_subplot(grid[0, j]) for j in range(4)], panel, plt, with_titles=True)
    if panel.note:
        fig.axes[0].set_ylabel(f"{panel.case} slice {panel.index}\n{panel.note}", fontsize=8)
    if has_sweep:
        _lambda_axes(fig.add_subplot(grid[1, :2]), report)
        _scatter_axes(fig.add_subplot(grid[1, 2:]), report, "cnr_scar_myo", "CNR(scar, myo)")
    else:
        _scatter_axes(fig.add_subplot(grid[1, :2]), report, "cnr_scar_myo", "CNR(scar, myo)")
        _scatter_axes(fig.add_subplot(grid[1, 2:]), report, "cnr_scar_blood", "CNR(scar, blood)")
    t1 = report["summary"]["table1"]

    def mean(variant, key):
        value = t1[variant][key]["mean"] if t1[variant] else None
        return "–" if value is None else f"{value:.2f}"

    fig.suptitle(f"ScarEnhance evaluation: {report['summary']['n_slices_with_scar']} slices with scar — CNR(scar,myo) "
                 f"{mean('original', 'cnr_scar_myo')} → {mean('output', 'cnr_scar_myo')} (target {mean('target', 'cnr_scar_myo')}), "
                 f"SSIM {mean('output', 'ssim_pct')} %, PSNR {mean('output', 'psnr_db')} dB", fontsize=10)
    return fig
