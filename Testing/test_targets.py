"""Gamma targets (paper §2.1): each rule, the scar/blood guard, the dataset blood mean, and the command."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from scarenhance import labels as L
from scarenhance.cli import main
from scarenhance.datasets import Case, iter_cases
from scarenhance.errors import InputError
from scarenhance.targets import (
    AUTHORS_BLOOD_MEAN,
    GammaConfig,
    choose_gammas,
    dataset_blood_mean,
    make_target,
    make_targets,
)

NO_GUARD = GammaConfig(scar_blood_margin=0.0)


def _phantom_slice(scar=None, blood=None, myo=60.0, seed=0, size=32, dtype=np.float32):
    """(H, W) slice in [0, 255] and canonical labels: blood disc, myocardium ring, scar sector, RV, noise.

    ``scar`` / ``blood``: the tissue's constant intensity (None: tissue absent).
    """
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 255, (size, size)).astype(dtype)
    labels = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size] - size / 2
    r = np.hypot(yy, xx)
    ring = (r >= 6) & (r < 10)
    labels[ring] = L.MYOCARDIUM
    image[ring] = rng.normal(myo, 5, ring.sum()).clip(0, 255)
    if blood is not None:
        labels[r < 6] = L.BLOOD
        image[r < 6] = blood
    if scar is not None:
        sector = ring & (xx > 2)
        labels[sector] = L.SCAR
        image[sector] = scar
    labels[:4, :6] = L.OTHER  # RV blood: never touched
    return image, labels


def _expected(value, gamma):
    return np.float32(255.0 * (value / 255.0) ** (1.0 / gamma))


# ---------------------------------------------------------------------------------------------- scar rule


@pytest.mark.parametrize("scar_mean, gamma", [(20.0, 1.7), (60.0, 1.7), (60.46, 1.6), (100.0, 1.6), (149.9, 1.6), (150.0, 1.5), (230.0, 1.5)])
def test_scar_gamma_follows_the_authors_bands(scar_mean, gamma):
    image, labels = _phantom_slice(scar=scar_mean, dtype=np.float64)  # float64: exactly on the thresholds
    chosen = choose_gammas(image, labels, NO_GUARD)
    assert chosen.scar_gamma == gamma
    target = make_target(image, labels, NO_GUARD)
    np.testing.assert_allclose(target[labels == L.SCAR], _expected(scar_mean, gamma), rtol=1e-6)


def test_enhanced_scar_is_brighter_pixel_by_pixel():
    rng = np.random.default_rng(3)
    image, labels = _phantom_slice(scar=0.0, blood=120.0)
    scar = labels == L.SCAR
    image[scar] = rng.uniform(1, 254, scar.sum())
    target = make_target(image, labels)
    assert np.all(target[scar] > image[scar])
    assert target[scar].mean() > image[scar].mean() + 10
    assert target.dtype == np.float32 and target.min() >= 0 and target.max() <= 255


def test_darker_scar_gets_the_stronger_gamma():
    dark = choose_gammas(*_phantom_slice(scar=40.0), NO_GUARD).scar_gamma
    mid = choose_gammas(*_phantom_slice(scar=100.0), NO_GUARD).scar_gamma
    bright = choose_gammas(*_phantom_slice(scar=200.0), NO_GUARD).scar_gamma
    assert dark > mid > bright > 1


# ---------------------------------------------------------------------------------------------- blood rule


@pytest.mark.parametrize("blood_mean, gamma", [(40.0, None), (56.0, None), (70.0, 0.9), (86.03, 0.8), (100.0, 0.8), (120.0, 0.7), (131.0, 0.6), (220.0, 0.6)])
def test_blood_brighter_than_the_dataset_mean_is_darkened(blood_mean, gamma):
    image, labels = _phantom_slice(blood=blood_mean, dtype=np.float64)  # float64: exactly on the thresholds
    chosen = choose_gammas(image, labels, blood_mean=AUTHORS_BLOOD_MEAN)
    assert chosen.blood_gamma == gamma
    target = make_target(image, labels, blood_mean=AUTHORS_BLOOD_MEAN)
    blood = labels == L.BLOOD
    if gamma is None:
        np.testing.assert_array_equal(target[blood], image[blood].astype(np.float32))
    else:
        np.testing.assert_allclose(target[blood], _expected(blood_mean, gamma), rtol=1e-6)
        assert np.all(target[blood] < image[blood])


def test_the_dataset_mean_decides_not_the_authors_constant():
    image, labels = _phantom_slice(blood=100.0)
    assert choose_gammas(image, labels, blood_mean=None).blood_gamma == 0.8  # authors' 56.47 when no dataset is given
    assert choose_gammas(image, labels, blood_mean=120.0).blood_gamma is None  # below this dataset's mean
    assert choose_gammas(image, labels, blood_mean=90.0).blood_gamma == 0.8


def test_thresholds_and_gammas_are_configurable():
    config = GammaConfig(scar_thresholds=(100.0,), scar_gammas=(2.0, 1.2), blood_thresholds=(150.0,), blood_gammas=(0.95, 0.5),
                         scar_blood_margin=0.0)
    image, labels = _phantom_slice(scar=90.0, blood=160.0)
    chosen = choose_gammas(image, labels, config, blood_mean=80.0)
    assert (chosen.scar_gamma, chosen.blood_gamma) == (2.0, 0.5)
    image, labels = _phantom_slice(scar=110.0, blood=140.0)
    chosen = choose_gammas(image, labels, config, blood_mean=80.0)
    assert (chosen.scar_gamma, chosen.blood_gamma) == (1.2, 0.95)


# ---------------------------------------------------------------------------------------------- untouched tissue


def test_myocardium_other_and_background_are_bit_identical():
    image, labels = _phantom_slice(scar=90.0, blood=180.0, seed=5)
    target = make_target(image, labels)
    keep = ~np.isin(labels, (L.SCAR, L.BLOOD))
    assert {L.BACKGROUND, L.MYOCARDIUM, L.OTHER} <= set(np.unique(labels[keep]))
    assert np.array_equal(target[keep].view(np.uint32), image[keep].view(np.uint32))
    assert not np.array_equal(target[labels == L.SCAR], image[labels == L.SCAR])


def test_slice_without_scar_or_blood_is_returned_unchanged():
    image, labels = _phantom_slice(seed=2)
    target = make_target(image, labels)
    assert np.array_equal(target.view(np.uint32), image.view(np.uint32))


def test_make_targets_is_make_target_per_slice():
    pairs = [_phantom_slice(scar=s, blood=b, seed=i) for i, (s, b) in enumerate([(40, 150), (None, 90), (180, None), (120, 200)])]
    slices = np.stack([p[0] for p in pairs])
    labels = np.stack([p[1] for p in pairs])
    stacked = make_targets(slices, labels, blood_mean=95.0)
    assert stacked.shape == slices.shape and stacked.dtype == np.float32
    for i, (image, lab) in enumerate(pairs):
        np.testing.assert_array_equal(stacked[i], make_target(image, lab, blood_mean=95.0))


# ---------------------------------------------------------------------------------------------- guard


def test_guard_separates_enhanced_scar_from_corrected_blood():
    # Scar 150 → band γ 1.5 → 179.6; blood 200 → γ 0.6 → 170.4: only 9.2 apart.
    image, labels = _phantom_slice(scar=150.0, blood=200.0)
    off = choose_gammas(image, labels, NO_GUARD, blood_mean=AUTHORS_BLOOD_MEAN)
    assert off.scar_gamma == 1.5 and abs(off.enhanced_scar_mean - off.corrected_blood_mean) < 10
    on = choose_gammas(image, labels, GammaConfig(scar_blood_margin=10.0), blood_mean=AUTHORS_BLOOD_MEAN)
    assert on.scar_gamma > 1.5 and on.guard_raised_gamma
    assert abs(on.enhanced_scar_mean - on.corrected_blood_mean) >= 10
    target = make_target(image, labels, GammaConfig(scar_blood_margin=10.0), blood_mean=AUTHORS_BLOOD_MEAN)
    assert abs(target[labels == L.SCAR].mean() - target[labels == L.BLOOD].mean()) >= 10
    # A wider margin needs a stronger γ.
    wide = choose_gammas(image, labels, GammaConfig(scar_blood_margin=25.0), blood_mean=AUTHORS_BLOOD_MEAN)
    assert wide.scar_gamma > on.scar_gamma and abs(wide.enhanced_scar_mean - wide.corrected_blood_mean) >= 25


def test_guard_leaves_well_separated_scar_alone():
    image, labels = _phantom_slice(scar=100.0, blood=60.0)
    chosen = choose_gammas(image, labels, blood_mean=AUTHORS_BLOOD_MEAN)
    assert chosen.scar_gamma == 1.6 and not chosen.guard_raised_gamma


def test_guard_stops_at_the_maximum_and_says_so():
    image, labels = _phantom_slice(scar=250.0, blood=252.0)
    config = GammaConfig(scar_blood_margin=50.0, scar_gamma_max=1.8)
    chosen = choose_gammas(image, labels, config, blood_mean=AUTHORS_BLOOD_MEAN)
    assert chosen.scar_gamma <= 1.8 and chosen.notes


# ---------------------------------------------------------------------------------------------- dataset mean


def test_dataset_blood_mean_is_the_mean_of_blood_pool_means():
    small, small_labels = _phantom_slice(blood=40.0)
    big = np.full((32, 32), 80.0, np.float32)
    big_labels = np.full((32, 32), L.BLOOD, np.uint8)  # a much larger pool: pixel weighting would give ~74
    no_blood = _phantom_slice(scar=100.0)
    value = dataset_blood_mean([(small, small_labels), (np.stack([big, no_blood[0]]), np.stack([big_labels, no_blood[1]]))])
    assert value == pytest.approx(60.0)


def _case(name, blood_raw, myo_raw=300.0, scar_raw=None, seed=0):
    """A 3-slice volume (raw intensities 0..1000 in every slice so each scales by 0.255) and labels."""
    rng = np.random.default_rng(seed)
    array = rng.uniform(0, 1000, (3, 24, 20)).astype(np.float32)
    labels = np.zeros(array.shape, np.uint8)
    labels[:, 8:16, 6:14] = L.MYOCARDIUM
    array[:, 8:16, 6:14] = myo_raw
    labels[:, 10:14, 8:12] = L.BLOOD
    array[:, 10:14, 8:12] = blood_raw
    if scar_raw is not None:
        labels[:, 8:10, 6:14] = L.SCAR
        array[:, 8:10, 6:14] = scar_raw
    array[:, 0, 0], array[:, 0, 1] = 0.0, 1000.0  # fixes each slice's range to [0, 1000]
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.4, 1.4, 8.0))
    image.SetOrigin((-20.0, 5.0, 3.0))
    lab = sitk.GetImageFromArray(labels)
    lab.CopyInformation(image)
    return Case(name, image, lab, None, None)


def test_dataset_blood_mean_from_cases_uses_per_slice_scaling():
    cases = [_case("a", blood_raw=400.0), _case("b", blood_raw=600.0, seed=1)]
    assert dataset_blood_mean(cases) == pytest.approx(0.255 * 500.0, rel=1e-5)


def test_dataset_without_blood_is_an_error():
    image, labels = _phantom_slice(scar=100.0)
    with pytest.raises(InputError, match="no blood pool"):
        dataset_blood_mean([(image, labels)])


# ---------------------------------------------------------------------------------------------- config and inputs


def test_config_from_json_overrides_some_fields(tmp_path):
    path = tmp_path / "gamma.json"
    path.write_text(json.dumps({"scar_gammas": [2.0, 1.8, 1.4], "scar_blood_margin": 0}))
    config = GammaConfig.from_json(path)
    assert config.scar_gammas == (2.0, 1.8, 1.4) and config.scar_thresholds == (60.46, 150.0)
    assert config.blood_gammas == (0.9, 0.8, 0.7, 0.6) and config.scar_blood_margin == 0


@pytest.mark.parametrize(
    "spec, problem",
    [
        ({"scar_gamma": [2.0]}, "unknown gamma settings"),
        ({"scar_gammas": [1.7, 1.6]}, "scar_gammas needs 3 values"),
        ({"scar_gammas": [1.7, 0.9, 1.5]}, "must all be > 1"),
        ({"blood_gammas": [0.9, 0.8, 0.7, 1.3]}, r"blood_gammas must be in \(0, 1\]"),
        ({"blood_thresholds": [120.0, 86.0, 130.0]}, "must be ascending"),
    ],
)
def test_bad_config_names_the_file_and_the_problem(tmp_path, spec, problem):
    path = tmp_path / "gamma.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(InputError, match=problem) as e:
        GammaConfig.from_json(path)
    assert "gamma.json" in str(e.value)


def test_unscaled_slice_is_refused():
    image, labels = _phantom_slice(scar=100.0)
    with pytest.raises(InputError, match=r"scaled to \[0, 255\]"):
        make_target(image * 10, labels)


# ---------------------------------------------------------------------------------------------- command


def _emidec(root, cases):
    for case in cases:
        src = sitk.GetArrayFromImage(case.labels)  # canonical → EMIDEC values (scar as infarct 3)
        for sub, image in (("Images", case.image), ("Contours", sitk.GetImageFromArray(src))):
            if sub == "Contours":
                image.CopyInformation(case.image)
            path = root / case.name / sub / f"{case.name}.nii.gz"
            path.parent.mkdir(parents=True)
            sitk.WriteImage(image, str(path))


def test_targets_command_writes_volumes_and_report(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    _emidec(data, [_case("Case_A", blood_raw=700.0, scar_raw=500.0), _case("Case_B", blood_raw=300.0, scar_raw=800.0, seed=1)])
    assert main(["targets", "--data", str(data), "--out", str(out)]) == 0

    report = json.loads((out / "targets.json").read_text())
    expected_mean = dataset_blood_mean(iter_cases(data))
    assert report["dataset_blood_mean"] == pytest.approx(expected_mean) == pytest.approx(0.255 * 500.0, rel=1e-5)
    by_name = {c["name"]: c for c in report["cases"]}
    # Case_A: blood 178.5 > 127.5 → γ 0.6; scar 127.5 → 1.6. Case_B: blood 76.5 below the mean → untouched.
    assert {s["blood_gamma"] for s in by_name["Case_A"]["slices"]} == {0.6}
    assert {s["scar_gamma"] for s in by_name["Case_A"]["slices"]} == {1.6}
    assert {s["blood_gamma"] for s in by_name["Case_B"]["slices"]} == {None}

    for case in iter_cases(data):
        target = sitk.ReadImage(str(out / f"{case.name}.nii.gz"))
        assert target.GetPixelID() == sitk.sitkFloat32
        assert target.GetSize() == case.image.GetSize()
        assert target.GetSpacing() == pytest.approx(case.image.GetSpacing())
        assert target.GetOrigin() == pytest.approx(case.image.GetOrigin())
        t, x, lab = (sitk.GetArrayFromImage(v) for v in (target, case.image, case.labels))
        keep = np.isin(lab, (L.BACKGROUND, L.MYOCARDIUM))
        assert np.array_equal(t[keep].view(np.uint32), x[keep].astype(np.float32).view(np.uint32))  # bit for bit
        if case.name == "Case_B":  # its blood is below the dataset mean: left alone, so exact too
            blood = lab == L.BLOOD
            assert np.array_equal(t[blood], x[blood].astype(np.float32))
        assert np.all(t[lab == L.SCAR] > x[lab == L.SCAR])
    assert "dataset blood mean" in capsys.readouterr().out


def test_targets_command_refuses_to_overwrite_and_reads_a_config(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    _emidec(data, [_case("Case_A", blood_raw=700.0, scar_raw=500.0)])
    assert main(["targets", "--data", str(data), "--out", str(out)]) == 0
    before = (out / "Case_A.nii.gz").read_bytes()
    capsys.readouterr()
    assert main(["targets", "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exist" in err and "Case_A.nii.gz" in err
    assert (out / "Case_A.nii.gz").read_bytes() == before

    config = tmp_path / "gamma.json"
    config.write_text(json.dumps({"scar_thresholds": [200.0], "scar_gammas": [2.2, 1.3], "scar_blood_margin": 0}))
    assert main(["targets", "--data", str(data), "--out", str(out), "--config", str(config), "--overwrite"]) == 0
    report = json.loads((out / "targets.json").read_text())
    assert {s["scar_gamma"] for s in report["cases"][0]["slices"]} == {2.2}
    assert (out / "Case_A.nii.gz").read_bytes() != before


def test_warns_when_the_dataset_mean_is_above_the_blood_thresholds():
    from scarenhance.targets import config_warnings

    assert config_warnings(GammaConfig(), 56.47) == []
    (warning,) = config_warnings(GammaConfig(), 120.0)
    assert "[86.03, 115.59]" in warning and "gamma 0.7" in warning


def test_targets_on_phantom_cases(tmp_path):
    """The real pipeline: phantom LGE (int16, oblique, anisotropic) → EMIDEC files → targets in the input grid."""
    from scarenhance.phantom import write_cases
    from scarenhance.targets import write_dataset_targets

    write_cases(tmp_path / "data", n=2, seed=11, n_slices=3, size=(96, 88), spacing=1.6, scar_pattern="transmural")
    report = write_dataset_targets(tmp_path / "data", tmp_path / "out")
    assert report["dataset_blood_mean"] == pytest.approx(dataset_blood_mean(iter_cases(tmp_path / "data")))
    for case in iter_cases(tmp_path / "data"):
        target = sitk.ReadImage(str(tmp_path / "out" / f"{case.name}.nii.gz"))
        t, x, lab = (sitk.GetArrayFromImage(v) for v in (target, case.image, case.labels))
        assert t.shape == x.shape and target.GetDirection() == pytest.approx(case.image.GetDirection())
        keep = ~np.isin(lab, (L.SCAR, L.BLOOD))
        assert target.GetPixelID() == sitk.sitkFloat32 and np.array_equal(t[keep], x[keep].astype(np.float32))
        scar = lab == L.SCAR
        assert scar.any() and t[scar].mean() > x[scar].mean()


def test_targets_of_an_input_float32_cannot_hold_are_float64_and_exact_outside(tmp_path):
    """int32 above 2**24: float32 would round the untouched voxels, so the target volume is float64."""
    from scarenhance.targets import write_dataset_targets

    case = _case("Case_A", blood_raw=700.0, scar_raw=500.0)
    big = sitk.Cast(case.image, sitk.sitkInt32) * 40000 + (2**24 + 1)  # odd values beyond float32's integers
    _emidec(tmp_path / "data", [Case("Case_A", big, case.labels, None, None)])
    write_dataset_targets(tmp_path / "data", tmp_path / "out")
    target = sitk.ReadImage(str(tmp_path / "out" / "Case_A.nii.gz"))
    t, x, lab = (sitk.GetArrayFromImage(v) for v in (target, big, case.labels))
    keep = ~np.isin(lab, (L.SCAR, L.BLOOD))
    assert target.GetPixelID() == sitk.sitkFloat64 and np.array_equal(t[keep], x[keep])
    assert np.all(t[lab == L.SCAR] > x[lab == L.SCAR])
