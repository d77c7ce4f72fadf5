"""Evaluation: metric definitions, LPIPS availability, statistics, and an INDEPENDENT recomputation of a report.

The report test evaluates three small phantom cases with stand-in models (the heart ROI is the labelled
heart; the "enhancement" brightens the ROI's bright half and adds seeded noise), then recomputes the
numbers of report.json from the files on disk with plain numpy: its own NIfTI reading and per-slice
scaling, its own crop, CNR, SSIM (a float64 Gaussian-window implementation, not MONAI's), PSNR, Dice,
mean ± SD, and an exact Wilcoxon p-value by enumerating all sign flips.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from scarenhance.errors import InputError
from scarenhance.evaluation import metrics as M
from scarenhance.evaluation.lpips import LPIPS, load_lpips
from scarenhance.evaluation.stats import format_mean_sd, summarize, wilcoxon

# ---- metric definitions --------------------------------------------------------------------------


def test_cnr_is_mean_difference_over_the_reference_std():
    image = np.zeros((4, 4))
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :2] = True
    image[0, :2] = 10.0
    b[1:3, :] = True
    image[1, :] = 2.0
    image[2, :] = 4.0  # b: mean 3, population std 1
    assert M.cnr(image, a, b) == pytest.approx(7.0)
    assert math.isnan(M.cnr(image, b, a))  # a flat reference region has no noise to compare with
    assert math.isnan(M.cnr(image, np.zeros_like(a), b))


def test_crop_box_is_the_heart_box_grown_to_16_and_kept_inside():
    mask = np.zeros((40, 30), bool)
    mask[1:4, 27:29] = True  # 3 × 2 box near the top right corner
    rows, cols = M.crop_box(mask)
    assert (rows.stop - rows.start, cols.stop - cols.start) == (16, 16)
    assert rows.start == 0 and cols.stop == 30  # shifted inside the image, still covering the mask
    assert mask[rows, cols].sum() == mask.sum()
    mask[:] = False
    mask[5:30, 2:25] = True
    assert M.crop_box(mask) == (slice(5, 30), slice(2, 25))  # large boxes are not grown
    with pytest.raises(ValueError):
        M.crop_box(np.zeros((20, 20), bool))


def test_ssim_psnr_dice_of_simple_cases():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (32, 32))
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert M.psnr(a, a) == M.PSNR_CAP_DB
    assert M.psnr(a, a + 1.0) == pytest.approx(20 * math.log10(255.0), abs=1e-6)  # MSE 1
    assert M.ssim(a, 255 - a) < 0
    assert M.dice(np.ones(4, bool), np.array([1, 1, 0, 0], bool)) == pytest.approx(2 * 2 / 6)
    assert M.dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0  # nothing to find, nothing found
    assert M.dice(np.zeros(3, bool), np.ones(3, bool)) == 0.0 == M.dice(np.ones(3, bool), np.zeros(3, bool))
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[:2], b[1:3] = True, True
    assert M.dice(a, b) == pytest.approx(0.5) and M.dice(a.astype(np.uint8), b * 7) == pytest.approx(0.5)


def test_one_dice_everywhere():
    """The segmentation trainer's validation, the demo and the report all score with metrics.dice: no
    other module defines a Dice of its own (they used to disagree on two empty masks)."""
    import re

    from scarenhance import demo
    from scarenhance.segmentation import train

    assert train.dice is M.dice and demo.dice is M.dice
    root = Path(M.__file__).parents[1]
    others = [p for p in root.rglob("*.py") if p != Path(M.__file__)
              and re.search(r"def \w*dice\w*\(|2(\.0)? \* .*(&|logical_and).*sum\(\)", p.read_text(encoding="utf-8"))]
    assert others == []


def test_summary_and_wilcoxon():
    s = summarize([1.0, 2.0, None, float("nan"), 3.0])
    assert s == {"mean": 2.0, "sd": 1.0, "n": 3}
    assert format_mean_sd(s) == "2.00 ± 1.00"
    assert summarize([]) == {"mean": None, "sd": None, "n": 0}
    same = wilcoxon([1.0, 2.0], [1.0, 2.0])
    assert same["p"] is None and same["n"] == 2  # all differences zero: no test
    w = wilcoxon([2.0, 3.5, 5.0, 7.0, 9.5, 12.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert w["p"] == pytest.approx(2 / 64)  # every pair improves: exact two-sided p = 2 / 2^6
    with pytest.raises(ValueError):
        wilcoxon([1.0], [1.0, 2.0])


# ---- LPIPS: local weights only --------------------------------------------------------------------


def _fake_lpips_state(layout: str = "lpips") -> dict:
    """Random tensors in the AlexNet-LPIPS layout: stands in for a user's weights file (shapes only matter)."""
    g = torch.Generator().manual_seed(0)
    convs = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}
    slice_of = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    state = {}
    for index, (c_out, c_in, k) in convs.items():
        prefix = f"net.slice{slice_of[index]}.{index}" if layout == "lpips" else f"features.{index}"
        state[f"{prefix}.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * 0.05
        state[f"{prefix}.bias"] = torch.zeros(c_out)
    for i, c in enumerate((64, 192, 384, 256, 256)):
        state[f"lin{i}.model.1.weight"] = torch.rand(1, c, 1, 1, generator=g)
    return state


def test_lpips_is_unavailable_without_a_weights_file(tmp_path):
    metric, status = load_lpips(None)
    assert metric is None and status.startswith("unavailable") and "--lpips-weights" in status
    assert "lpips.LPIPS(net='alex').state_dict()" in status and ".py" not in status.replace("python -c", "")  # how, not where
    metric, status = load_lpips(tmp_path / "missing.pt")
    assert metric is None and "not found" in status and "missing.pt" in status


def test_lpips_never_builds_a_backbone_without_weights(tmp_path):
    with pytest.raises(InputError, match="not an LPIPS weights file"):
        LPIPS({})
    bad = tmp_path / "notlpips.pt"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(InputError, match="notlpips.pt"):
        load_lpips(bad)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="garbage.pt"):
        load_lpips(garbage)


def test_lpips_from_a_local_file_in_either_layout(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (20, 24))  # smaller than AlexNet's stem: upsampled inside
    b = np.clip(a + rng.normal(0, 40, a.shape), 0, 255)
    values = []
    for layout in ("lpips", "torchvision"):
        path = tmp_path / f"{layout}.pt"
        torch.save(_fake_lpips_state(layout), path)
        metric, status = load_lpips(path)
        assert status.startswith("available: alex")
        assert metric.distance(a, a) == pytest.approx(0.0, abs=1e-7)
        values.append(metric.distance(a, b))
        assert values[-1] > 0
        assert metric.distance(b, a) == pytest.approx(values[-1], rel=1e-5)
    assert values[0] == pytest.approx(values[1], rel=1e-6)  # the same weights give the same number


# ---- the report, recomputed independently ---------------------------------------------------------


class StandInModels:
    """Heart ROI = labelled heart; "enhancement" = bright half of the ROI × (1 + λ/1000) + seeded noise."""

    has_whole_image_model = True

    def __init__(self, root: Path):
        self.truth = {}
        for path in root.glob("*/Contours/*.nii.gz"):
            labels = sitk.ReadImage(str(path))
            self.truth[labels.GetOrigin()] = (sitk.GetArrayFromImage(labels) > 0).astype(np.uint8)
        self.calls = []

    def segment(self, image, progress=None):
        roi = sitk.GetImageFromArray(self.truth[image.GetOrigin()])
        roi.CopyInformation(image)
        return roi

    def enhance(self, image, roi, *, lam, k, seed, whole_image=False, progress=None):
        self.calls.append({"lam": lam, "k": k, "seed": seed, "whole_image": whole_image})
        x = sitk.GetArrayFromImage(image).astype(np.float64)
        inside = np.ones(x.shape, bool) if whole_image else sitk.GetArrayFromImage(roi).astype(bool)
        rng = np.random.default_rng(seed)
        samples = []
        for _ in range(k):
            y = x.copy()
            y[inside & (x > np.median(x[inside]))] *= 1.0 + lam / 1000.0
            y[inside] += rng.normal(0, 0.01 * x.max(), int(inside.sum()))
            samples.append(y)
        out = []
        for array in (np.mean(samples, 0), np.std(samples, 0)):
            volume = sitk.GetImageFromArray(array.astype(np.float32))
            volume.CopyInformation(image)
            out.append(volume)
        return tuple(out)

    def describe(self):
        return {"segmentation": {"folder": "stand-in"}, "diffusion": {"folder": "stand-in"}}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from scarenhance.evaluation.report import EvalSettings, evaluate_dataset
    from scarenhance.phantom import write_cases

    root = tmp_path_factory.mktemp("evaluation")
    data = root / "data"
    write_cases(data, n=3, seed=4242, n_slices=4, size=(96, 96))
    models = StandInModels(data)
    settings = EvalSettings(lam=250, k=3, seed=5, lam_sweep=(1, 100, 400), n_sweep_cases=2, figure_cases=2)
    report = evaluate_dataset(data, models, root / "report", settings, log=lambda line: None)
    return data, root / "report", report, models


def _read_slices(path: Path) -> np.ndarray:
    """(z, y, x) float64 array straight from the file (phantoms slice along z, their largest spacing)."""
    image = sitk.ReadImage(str(path))
    assert np.argmax(image.GetSpacing()) == 2
    return sitk.GetArrayFromImage(image).astype(np.float64)


def _ssim_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of Wang et al. 2004: 11×11 Gaussian window σ 1.5, valid positions only, float64."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def filt(img):
        windows = np.lib.stride_tricks.sliding_window_view(img, (11, 11))
        return np.einsum("ijkl,kl->ij", windows, w)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a, var_b = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    return float(np.mean((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))))


def _exact_wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided exact p of the signed-rank statistic by enumerating every sign pattern (no ties/zeros)."""
    ranks = np.argsort(np.argsort(np.abs(diffs))) + 1.0
    observed = ranks[diffs > 0].sum()
    total = ranks.sum()
    stats = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=len(diffs))])
    low = min(observed, total - observed)
    return min(1.0, 2 * np.mean(stats <= low + 1e-9))


def test_report_numbers_match_an_independent_recomputation(evaluated):
    from scarenhance.targets import GammaConfig, make_targets

    data, report_dir, report, _ = evaluated
    on_disk = json.loads((report_dir / "report.json").read_text())
    assert on_disk["summary"] == report["summary"]
    by_name = {c["name"]: c for c in on_disk["cases"]}
    assert sorted(by_name) == ["Case_001", "Case_002", "Case_003"]

    # the data set's blood mean: mean over slices of each slice's blood-pool mean
    blood_means = []
    per_slice = {"original": [], "output": [], "target": []}
    psnr_values, ssim_values, dice_values = [], [], []
    for name, case in by_name.items():
        raw = _read_slices(data / name / "Images" / f"{name}.nii.gz")
        emidec = sitk.GetArrayFromImage(sitk.ReadImage(str(data / name / "Contours" / f"{name}.nii.gz")))
        labels = np.select([emidec == 1, emidec == 2, emidec >= 3], [1, 2, 3], 0).astype(np.uint8)
        lo, hi = raw.min(axis=(1, 2), keepdims=True), raw.max(axis=(1, 2), keepdims=True)
        original = (raw - lo) * 255.0 / (hi - lo)
        output = (_read_slices(report_dir / "cases" / name / "enhanced.nii.gz") - lo) * 255.0 / (hi - lo)
        blood_means += [original[i][labels[i] == 1].mean() for i in range(len(raw)) if (labels[i] == 1).any()]
        target = make_targets(original.astype(np.float32), labels, GammaConfig(), on_disk["targets"]["blood_mean"])
        roi = sitk.GetArrayFromImage(sitk.ReadImage(str(report_dir / "cases" / name / "roi.nii.gz"))).astype(bool)

        records = {s["index"]: s for s in case["slices"]}
        assert sorted(records) == [i for i in range(len(raw)) if (labels[i] > 0).any()]
        for i, rec in records.items():
            heart = labels[i] > 0
            dice_values.append(2 * (roi[i] & heart).sum() / (roi[i].sum() + heart.sum()))
            assert rec["dice_heart"] == pytest.approx(dice_values[-1])
            scar, myo, blood = labels[i] == 3, labels[i] == 2, labels[i] == 1
            assert rec["has_scar"] == (scar.sum() >= 5)
            rr, cc = np.nonzero(heart)
            r0, c0 = rr.min(), cc.min()
            h, w = max(rr.max() + 1 - r0, 16), max(cc.max() + 1 - c0, 16)
            r0 -= (h - (rr.max() + 1 - r0)) // 2
            c0 -= (w - (cc.max() + 1 - c0)) // 2
            r0, c0 = min(max(r0, 0), labels.shape[1] - h), min(max(c0, 0), labels.shape[2] - w)
            assert rec["crop"] == [r0, r0 + h, c0, c0 + w]
            crop = (slice(r0, r0 + h), slice(c0, c0 + w))
            for variant, image in (("original", original[i]), ("output", output[i])):
                mse = np.mean((image[crop] - target[i][crop]) ** 2)
                expected = min(10 * math.log10(255.0**2 / mse), 100.0) if mse > 0 else 100.0  # capped at 100 dB
                assert rec[variant]["psnr_db"] == pytest.approx(expected, abs=1e-3)
                expected_ssim = 100 * _ssim_numpy(image[crop], target[i][crop])
                assert rec[variant]["ssim_pct"] == pytest.approx(expected_ssim, abs=5e-3)  # MONAI computes in float32
                assert rec[variant]["mean_myocardium"] == pytest.approx(image[myo].mean(), rel=1e-5)
            if not rec["has_scar"]:
                continue
            ssim_values.append(rec["output"]["ssim_pct"])
            psnr_values.append(rec["output"]["psnr_db"])
            for variant, image in (("original", original[i]), ("output", output[i]), ("target", target[i])):
                expected_myo = abs(image[scar].mean() - image[myo].mean()) / image[myo].std()
                expected_blood = abs(image[scar].mean() - image[blood].mean()) / image[blood].std()
                assert rec[variant]["cnr_scar_myo"] == pytest.approx(expected_myo, rel=1e-4)
                assert rec[variant]["cnr_scar_blood"] == pytest.approx(expected_blood, rel=1e-4)
                per_slice[variant].append(expected_myo)

    assert on_disk["targets"]["blood_mean"] == pytest.approx(np.mean(blood_means), rel=1e-6)
    table1 = on_disk["summary"]["table1"]
    for variant, values in per_slice.items():
        assert table1[variant]["cnr_scar_myo"]["n"] == len(values) > 0
        assert table1[variant]["cnr_scar_myo"]["mean"] == pytest.approx(np.mean(values), rel=1e-4)
        assert table1[variant]["cnr_scar_myo"]["sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-4)
    assert table1["output"]["ssim_pct"]["mean"] == pytest.approx(np.mean(ssim_values), rel=1e-6)
    assert table1["output"]["psnr_db"]["sd"] == pytest.approx(np.std(psnr_values, ddof=1), rel=1e-6)
    assert on_disk["summary"]["heart_dice"]["per_slice"]["mean"] == pytest.approx(np.mean(dice_values))
    diffs = np.array(per_slice["output"]) - np.array(per_slice["original"])
    test = on_disk["summary"]["wilcoxon"]["output_vs_original"]["cnr_scar_myo"]
    assert test["n"] == len(diffs)
    assert test["p"] == pytest.approx(_exact_wilcoxon_p(diffs), rel=1e-6)


def test_report_runs_the_ablations_and_the_lambda_sweep(evaluated):
    _, report_dir, report, models = evaluated
    cases = 3
    main = [c for c in models.calls if c["lam"] == 250 and c["k"] == 3 and not c["whole_image"]]
    assert len(main) >= cases
    assert sum(c["k"] == 1 for c in models.calls) == cases  # single-sample ablation
    assert sum(c["whole_image"] for c in models.calls) == cases  # whole-image-noise ablation
    # every case draws its own noise, recorded in the report; the sweep reuses its case's seed
    from scarenhance.evaluation.report import case_seed

    seeds = {c["name"]: c["seed"] for c in report["cases"]}
    assert seeds == {name: case_seed(5, name) for name in ("Case_001", "Case_002", "Case_003")}
    assert len(set(seeds.values())) == cases and {c["seed"] for c in models.calls} == set(seeds.values())
    word = zlib.crc32(b"Case_002")
    assert seeds["Case_002"] == int(np.random.SeedSequence([5, word]).generate_state(1, dtype=np.uint32)[0] >> 1)
    assert case_seed(6, "Case_001") not in seeds.values() and 0 <= min(seeds.values()) and max(seeds.values()) < 2**31
    t2 = report["summary"]["table2"]
    assert t2["local_single"]["cnr_scar_myo"]["n"] == t2["local_mean"]["cnr_scar_myo"]["n"] > 0
    assert t2["whole_image"]["ssim_pct"]["mean"] is not None
    sweep = report["lambda_sweep"]
    assert sweep["lams"] == [1, 100, 400] and len(sweep["cases"]) == 2
    burdens = {c["name"]: c["scar_burden_pct"] for c in report["cases"]}
    assert sweep["cases"][0]["scar_burden_pct"] == pytest.approx(max(b for b in burdens.values() if b > 0))
    # the stand-in enhancement grows with λ, so its CNR must change along the sweep
    for case in sweep["cases"]:
        assert len(case["cnr_scar_myo"]) == 3 and len(set(np.round(case["cnr_scar_myo"], 6))) > 1
    fe = report["summary"]["false_enhancement"]
    assert fe["n_slices"] == report["summary"]["n_slices_without_scar"]
    assert set(fe) >= {"myocardium", "blood", "remote_myocardium_on_scar_slices"}


def test_report_files_tables_and_figures(evaluated):
    _, report_dir, report, _ = evaluated
    md = (report_dir / "report.md").read_text()
    for heading in ("## Table 1", "## Table 2", "## Heart segmentation", "## False enhancement", "## λ sweep"):
        assert heading in md
    assert "| *paper: ours* | 96.06 ± 6.24 | 43.75 ± 18.04" in md
    assert "unavailable" in md  # LPIPS without weights
    assert f"{report['summary']['table1']['output']['cnr_scar_myo']['mean']:.2f}" in md
    for name in ("cases.png", "lambda_curve.png", "cnr_scatter.png", "overview.png"):
        png = report_dir / "figures" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"figures/{name}" in report["figures"]
    json.loads((report_dir / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))


def test_report_refuses_to_overwrite(evaluated):
    from scarenhance.evaluation.report import evaluate_dataset

    data, report_dir, _, models = evaluated
    before = (report_dir / "report.json").read_bytes()
    with pytest.raises(InputError, match="--overwrite"):
        evaluate_dataset(data, models, report_dir, log=lambda line: None)
    assert (report_dir / "report.json").read_bytes() == before


# ---- the command line, with small untrained model folders ----------------------------------------


@pytest.fixture(scope="module")
def untrained_models(tmp_path_factory):
    """Model folders in the bundle layout holding untrained networks of the shipped architectures."""
    from scarenhance.bundle import save_bundle
    from scarenhance.diffusion.network import ConditionalDenoiser, network_def
    from scarenhance.segmentation import network as seg_network

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    seg_def = seg_network.network_def("cpu-small")
    save_bundle(root / "seg", seg_network.build(seg_def), seg_def,
                {"scarenhance": {"kind": "heart-segmentation", "input": {"spacing_mm": 1.6, "multiple_of": 16}}})
    save_bundle(root / "diffusion", ConditionalDenoiser("cpu-small"), network_def("cpu-small"), {"scarenhance": {"kind": "scar-diffusion"}})
    return root / "seg", root / "diffusion"


def test_evaluate_command(tmp_path, untrained_models, capsys):
    from scarenhance.cli import main
    from scarenhance.phantom import write_cases

    write_cases(tmp_path / "data", n=2, seed=4343, n_slices=3, size=(80, 80))
    seg, diffusion = untrained_models
    args = ["evaluate", "--data", str(tmp_path / "data"), "--report", str(tmp_path / "report"), "--seg-model", str(seg),
            "--diffusion-model", str(diffusion), "--k", "2", "--steps", "2", "--lam", "20", "--lam-sweep", "none",
            "--device", "cpu", "--progress", "lines"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "LPIPS unavailable" in out and "CNR(scar,myo)" in out
    fractions = [float(line.split()[1]) for line in err.splitlines() if line.startswith("PROGRESS ")]
    assert len(fractions) > 10 and fractions == sorted(fractions) and fractions[-1] == 1.0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    meta = json.loads((diffusion / "configs" / "metadata.json").read_text())
    assert report["models"]["diffusion"]["weights_sha256"] == meta["scarenhance"]["weights_sha256"]
    assert report["summary"]["n_cases"] == 2 and report["lambda_sweep"] == {}
    assert report["settings"]["steps"] == 2 and report["settings"]["k"] == 2
    assert report["models"]["agreement"] == 1.0  # enhance's default sample agreement, recorded

    assert main(args) == 2  # refuses to overwrite the report
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--agreement", "0"]) == 0  # the paper's plain mean of the k samples
    assert json.loads((tmp_path / "report" / "report.json").read_text())["models"]["agreement"] == 0.0
    assert main(args + ["--overwrite", "--agreement", "-1"]) == 2  # refused before any work
    assert "agreement" in capsys.readouterr().err


def test_synth_unseen_marks_which_cases_have_random_contrast():
    from scarenhance.evaluation.families import family_cases

    assert {c.contrast for c in family_cases("synth-unseen", 4, seed=9001)} == {"lge", "random"}  # half, by its ranges
    assert all(c.contrast == "lge" for c in family_cases("phantom-real-lge", 2, seed=9001))
