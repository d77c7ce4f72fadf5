"""The main job end to end on the shipped models: files, geometry, untouched voxels outside the ROI, no overwrite."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from scarenhance.demo import run_demo
from scarenhance.errors import InputError


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, seed=3, lam=20, k=2, steps=3, device="cpu")


def test_demo_writes_every_output_in_the_input_geometry(demo):
    for path in demo.files.values():
        assert path.is_file(), path
    image = sitk.ReadImage(str(demo.files["image"]))
    for name in ("labels", "roi", "enhanced", "uncertainty"):
        other = sitk.ReadImage(str(demo.files[name]))
        assert other.GetSize() == image.GetSize()
        assert np.allclose(other.GetOrigin(), image.GetOrigin()) and np.allclose(other.GetDirection(), image.GetDirection())
    metrics = json.loads(demo.files["metrics"].read_text(encoding="utf-8"))["metrics"]
    assert metrics["heart_dice"] > 0.8  # the shipped heart model on a phantom it never saw
    assert {"cnr_scar_myo_before", "cnr_scar_myo_after", "cnr_scar_blood_before", "cnr_scar_blood_after"} <= set(metrics)


def test_demo_changes_nothing_outside_the_roi(demo):
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(demo.files["image"])))
    enhanced = sitk.GetArrayFromImage(sitk.ReadImage(str(demo.files["enhanced"])))
    roi = sitk.GetArrayFromImage(sitk.ReadImage(str(demo.files["roi"]))).astype(bool)
    assert roi.any()
    np.testing.assert_array_equal(enhanced[~roi], original[~roi])
    assert not np.array_equal(enhanced[roi], original[roi])


def test_demo_refuses_to_overwrite_earlier_results(demo):
    before = demo.files["enhanced"].read_bytes()
    with pytest.raises(InputError, match="exist already"):
        run_demo(demo.out_dir, seed=4, lam=20, k=1, steps=2, device="cpu")
    assert demo.files["enhanced"].read_bytes() == before
