"""What the k samples agree on (diffusion/agreement.py): the mean change shrunk by its standard error,
checked against numbers worked out by hand, and wired through enhance_scar and the command line."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from scarenhance.diffusion import enhance_scar
from scarenhance.diffusion.agreement import DEFAULT_AGREEMENT, agreed_mean
from scarenhance.errors import InputError
from test_enhance import FAST, _case, model_dir, net  # noqa: F401 (fixtures)

# Four pixels, three samples each, all starting from 0:
#   every sample +0.3                → SE 0, the change is kept whole: +0.3
#   one sample +0.6, two unchanged   → mean 0.2, SD 0.3464 (ddof 1), SE 0.2: held back entirely at z = 1
#   −0.3, −0.4, −0.5                 → mean −0.4, SD 0.1, SE 0.0577: −0.4 + 0.0577 = −0.3423
#   all unchanged                    → 0
SAMPLES = np.array([[0.3, 0.6, -0.3, 0.0], [0.3, 0.0, -0.4, 0.0], [0.3, 0.0, -0.5, 0.0]])


def test_numbers_worked_out_by_hand():
    got = agreed_mean(SAMPLES, np.zeros(4), z=1.0)
    assert got == pytest.approx([0.3, 0.0, -0.4 + 0.1 / np.sqrt(3), 0.0], abs=1e-12)
    half = agreed_mean(SAMPLES, np.zeros(4), z=0.5)  # the one-sample brightening keeps half its mean
    assert half[1] == pytest.approx(0.2 - 0.5 * 0.2, abs=1e-12)


def test_zero_agreement_is_the_papers_mean_and_one_sample_is_returned_as_it_is():
    rng = np.random.default_rng(1)
    samples, original = rng.normal(size=(5, 7, 9)), rng.normal(size=(7, 9))
    assert np.array_equal(agreed_mean(samples, original, z=0.0), samples.mean(axis=0))
    assert np.array_equal(agreed_mean(samples[:1], original, z=3.0), samples[0])


def test_a_change_is_never_reversed_or_enlarged_and_a_larger_z_holds_back_more():
    rng = np.random.default_rng(2)
    original = rng.normal(size=(40, 40))
    samples = original + rng.normal(0.1, 0.3, size=(3, 40, 40)) * (rng.random((3, 40, 40)) < 0.5)
    plain = samples.mean(axis=0) - original
    previous = np.abs(plain)
    for z in (0.5, 1.0, 2.0):
        change = agreed_mean(samples, original, z) - original
        assert np.all(np.abs(change) <= previous + 1e-12)  # monotone in z, never above the plain change
        assert np.all(change * plain >= 0)  # no sign flips
        previous = np.abs(change)
    assert np.count_nonzero(previous) < np.count_nonzero(plain)  # some changes held back entirely


def test_enhance_scar_shrinks_changes_inside_the_roi_and_keeps_the_outside(net):  # noqa: F811
    image, roi = _case()
    src = sitk.GetArrayFromImage(image).astype(np.float64)
    inside = sitk.GetArrayFromImage(roi).astype(bool)
    plain, std = enhance_scar(image, roi, model=net, agreement=0.0, **FAST)
    agreed, std2 = enhance_scar(image, roi, model=net, **FAST)
    plain, agreed = sitk.GetArrayFromImage(plain), sitk.GetArrayFromImage(agreed)
    assert np.array_equal(agreed[~inside], plain[~inside])  # the input's, bit for bit, either way
    d_plain, d_agreed = (plain - src)[inside], (agreed - src)[inside]
    tol = 1e-3  # the output is float32: an unchanged voxel of a few hundred comes back within ±3e-5
    assert np.all(np.abs(d_agreed) <= np.abs(d_plain) + tol) and np.all(d_agreed * np.sign(d_plain) >= -tol)
    assert np.abs(d_agreed).sum() < 0.99 * np.abs(d_plain).sum()
    assert np.array_equal(sitk.GetArrayFromImage(std), sitk.GetArrayFromImage(std2))  # the spread is the samples'


@pytest.mark.parametrize("bad", [-0.5, 11.0, float("nan"), True, "1"])
def test_a_bad_agreement_is_an_input_error(net, bad):  # noqa: F811
    image, roi = _case()
    with pytest.raises(InputError, match="agreement"):
        enhance_scar(image, roi, model=net, agreement=bad, **FAST)


def test_the_cli_default_is_the_engines_and_the_safety_report_records_it(tmp_path, model_dir, capsys):  # noqa: F811
    image, roi = _case()
    sitk.WriteImage(image, str(tmp_path / "lge.nii.gz"))
    sitk.WriteImage(roi, str(tmp_path / "roi.nii.gz"))
    from scarenhance.cli import main

    args = ["enhance", "--input", str(tmp_path / "lge.nii.gz"), "--roi", str(tmp_path / "roi.nii.gz"),
            "--model", str(model_dir), "--lam", "4", "--k", "2", "--steps", "2", "--seed", "1", "--device", "cpu"]
    assert main(args + ["--output", str(tmp_path / "a.nii.gz")]) == 0
    assert json.loads((tmp_path / "a.safety.json").read_text())["agreement"] == DEFAULT_AGREEMENT
    assert main(args + ["--output", str(tmp_path / "b.nii.gz"), "--agreement", "0"]) == 0
    assert json.loads((tmp_path / "b.safety.json").read_text())["agreement"] == 0
    assert main(args + ["--output", str(tmp_path / "c.nii.gz"), "--agreement", "-1"]) == 2
    assert "agreement" in capsys.readouterr().err and not (tmp_path / "c.nii.gz").exists()
