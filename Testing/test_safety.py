"""The enhancement safety check, recomputed independently on a constructed case whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from scarenhance.diffusion.safety import MAX_DARK_BRIGHTENING, assess_enhancement


def constructed(seed=0):
    """3 slices of 40×40: air at 0, a myocardium square with dark remote tissue (≈ 40) and a bright
    scar patch (≈ 120) in its upper rows, and a brightest pixel of 255 so that the [0, 255] scale is the raw one."""
    rng = np.random.default_rng(seed)
    image = np.zeros((3, 40, 40))
    myo = np.zeros((3, 40, 40), bool)
    myo[:, 10:30, 10:30] = True
    image[myo] = 40 + rng.normal(0, 4, myo.sum())
    scar = np.zeros_like(myo)
    scar[:, 10:15, 10:30] = True  # 25 % of the myocardium: exactly the bright quartile
    image[scar] = 120 + rng.normal(0, 4, scar.sum())
    image[:, 0, 0] = 255.0
    return image, myo, scar


def to_image(array):
    img = sitk.GetImageFromArray(array.astype(np.float32))
    img.SetSpacing((1.0, 1.0, 8.0))
    return img


def independent_contrast(img, myo, before):
    """CNR(bright quartile, dark half) with the sets taken from `before`, written without the module."""
    values = before[myo]
    bright = myo & (before >= np.percentile(values, 75))
    dark = myo & (before < np.median(values))
    return (img[bright].mean() - img[dark].mean()) / img[dark].std(), dark


@pytest.mark.parametrize("case", ["raises", "lowers", "brightens_remote"])
def test_flags_exactly_the_slices_that_lose_contrast_or_brighten_remote_myocardium(case):
    image, myo, scar = constructed()
    out = image.copy()
    if case == "raises":
        out[scar] *= 1.3
    elif case == "lowers":
        out[scar] = 0.5 * out[scar] + 0.5 * 40  # scar pulled towards the remote myocardium
    else:
        out[myo & ~scar] *= 1.05  # every slice's remote myocardium +5 %: a false scar
    report = assess_enhancement(to_image(image), to_image(out), None, myo)
    for k, row in enumerate(report.slices):
        before, after = image[k].astype(np.float32).astype(np.float64), out[k].astype(np.float32).astype(np.float64)
        c0, dark = independent_contrast(before, myo[k], before)
        c1, _ = independent_contrast(after, myo[k], before)
        change = after[dark].mean() / before[dark].mean() - 1
        assert row["contrast_before"] == pytest.approx(c0, rel=1e-5)
        assert row["contrast_after"] == pytest.approx(c1, rel=1e-5)
        assert row["dark_change"] == pytest.approx(change, abs=1e-6)
        assert row["flagged"] == (c1 < c0 or change > MAX_DARK_BRIGHTENING)
    if case == "raises":
        assert report.verdict == "ok" and report.flagged_slices == [] and "passed on 3 slices" in report.summary
    else:
        assert report.verdict == "caution" and report.flagged_slices == [1, 2, 3] and "slice 1, 2, 3" in report.summary


def test_a_slice_without_myocardium_is_listed_as_not_assessed():
    image, myo, _ = constructed()
    myo[1] = False
    report = assess_enhancement(to_image(image), to_image(image), to_image(np.zeros_like(image)), myo)
    assert [r["assessed"] for r in report.slices] == [True, False, True]
    assert report.slices[0]["dark_spread"] == 0.0 and json.dumps(report.to_dict())


def test_enhance_cli_writes_the_safety_report_beside_the_output(tmp_path, capsys):
    import torch

    from scarenhance import cli
    from scarenhance.bundle import save_bundle
    from scarenhance.diffusion.network import ConditionalDenoiser, network_def

    tiny = dict(channels=(8, 16), attention_levels=(False, True), num_res_blocks=1, norm_num_groups=8, num_head_channels=8)
    torch.manual_seed(0)
    model = save_bundle(tmp_path / "tiny", ConditionalDenoiser(**tiny).eval(), network_def("cpu-small", **tiny),
                        {"version": "0.0.1", "scarenhance": {"kind": "scar-diffusion", "train_t_max": 400}})
    image, myo, _ = constructed()
    labels = np.where(myo, 2, 0).astype(np.uint8)
    paths = {}
    for name, array in (("lge", image), ("roi", myo.astype(np.uint8)), ("labels", labels), ("nomyo", labels * 0 + 1)):
        img = sitk.GetImageFromArray(array.astype(np.float32 if name == "lge" else np.uint8))
        img.SetSpacing((1.0, 1.0, 8.0))
        paths[name] = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(img, str(paths[name]))
    out = tmp_path / "out.nii.gz"
    base = ["enhance", "--input", str(paths["lge"]), "--roi", str(paths["roi"]), "--output", str(out), "--model", str(model),
            "--lam", "4", "--k", "2", "--steps", "2", "--seed", "1", "--device", "cpu"]
    assert cli.main(base + ["--labels", str(paths["nomyo"])]) == 2
    assert "no LV myocardium" in capsys.readouterr().err and not out.exists()
    assert cli.main(base + ["--labels", str(paths["labels"])]) == 0
    report = json.loads((tmp_path / "out.safety.json").read_text())
    assert report["verdict"] in ("ok", "caution") and len(report["slices"]) == 3
    assert report["summary"] in capsys.readouterr().out
    assert cli.main(base + ["--labels", str(paths["labels"])]) == 2  # the report, like the output, is never overwritten
