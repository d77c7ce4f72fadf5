"""benchmarks/scar_decision.py: how well the decision where to brighten (a scar segmentation) can be made."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from scarenhance import labels as L
from scarenhance.diffusion.network import ConditionalDenoiser
from scarenhance.evaluation.families import EvalCase

from test_diffusion import TINY

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("scar_decision", ROOT / "benchmarks" / "scar_decision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _case() -> EvalCase:
    """Two 40-px slices: a blood disc (200) in a myocardial ring (40) with a scar arc (180) on its right half,
    and background 0 around; the heart sits off-centre so that the window has to find it."""
    yy, xx = np.mgrid[:40, :40]
    r = np.hypot(yy - 14, xx - 24)
    labels = np.zeros((2, 40, 40), np.uint8)
    labels[:, r < 5] = L.BLOOD
    labels[:, (r >= 5) & (r < 9)] = L.MYOCARDIUM
    labels[:, (r >= 5) & (r < 9) & (xx > 26)] = L.SCAR
    image = np.choose(labels, [0, 200, 40, 180]).astype(np.int16)
    itk = sitk.GetImageFromArray(image)
    itk.SetSpacing((1.5, 1.5, 8.0))
    return EvalCase("ring", itk, labels)


def test_the_window_is_centred_on_the_heart_and_keeps_its_labels():
    bench = _benchmark()
    image, labels = bench.heart_windows(_case(), side=32)
    assert image.shape == labels.shape == (2, 32, 32)
    ys, xs = np.nonzero(L.heart_mask(labels[0]))
    assert abs(ys.mean() - 16) < 1.5 and abs(xs.mean() - 16) < 1.5
    assert (labels[0] == L.SCAR).sum() == (_case().labels[0] == L.SCAR).sum()  # nothing cut off
    _, other = bench.heart_windows(_case(), side=32, labels=(_case().labels == L.SCAR).astype(np.uint8))
    assert np.array_equal(other, labels == L.SCAR)  # another label array gets the same window


def test_otsu_in_the_myocardium_finds_the_scar_and_in_the_roi_takes_the_blood_too():
    bench = _benchmark()
    rows = bench.family_dice([_case()], {
        "otsu-myocardium": lambda image, labels, case: bench.otsu_scar(image, bench.myocardium(labels)),
        "otsu-roi": lambda image, labels, case: bench.otsu_scar(image, L.heart_mask(labels))})
    assert rows["scar_slices"] == 2
    assert rows["otsu-myocardium"] == 1.0  # scar 180 against myocardium 40: the threshold falls between
    scar, blood = (int((_case().labels[0] == c).sum()) for c in (L.SCAR, L.BLOOD))
    assert abs(rows["otsu-roi"] - 2 * scar / (2 * scar + blood)) < 1e-9  # blood (200) is called scar as well


def test_random_contrast_cases_are_left_out():
    bench = _benchmark()
    case = _case()
    case.contrast = "random"
    assert bench.family_dice([case], {"x": lambda image, labels, case: labels == L.SCAR})["scar_slices"] == 0


def test_the_scar_head_is_read_inside_the_roi_only():
    """A head whose logits are +5 everywhere calls the whole ROI scar and nothing outside it."""
    bench = _benchmark()
    net = ConditionalDenoiser(prediction="residual", scar_head=True, **TINY).eval()
    with torch.no_grad():
        net.zero_output()
        net.unet.out[-1].conv.bias[1] = 5.0
    image, labels = bench.heart_windows(_case(), side=32)
    roi = L.heart_mask(labels)
    assert np.array_equal(bench.head_scar(net, image, roi), roi)


def test_the_share_of_scar_the_heart_model_calls_blood():
    """Classes that call the scar's upper half blood pool: half of the scar is 'blood'; random-contrast cases
    do not count."""
    bench = _benchmark()
    case = _case()
    classes = np.where(np.isin(case.labels, (L.MYOCARDIUM, L.SCAR)), L.CLASS_MYOCARDIUM, 0).astype(np.uint8)
    scar_rows = np.nonzero((case.labels == L.SCAR).any(axis=(0, 2)))[0]
    upper = scar_rows[: len(scar_rows) // 2]
    classes[:, upper] = np.where(case.labels[:, upper] == L.SCAR, L.CLASS_BLOOD, classes[:, upper])
    want = (case.labels[:, upper] == L.SCAR).sum() / (case.labels == L.SCAR).sum()  # counted, not classified
    assert 0.3 < want < 0.7
    other = _case()
    other.contrast = "random"
    assert bench.scar_called_blood(lambda c: classes, [case, other]) == pytest.approx(want)
