"""The synthetic LGE phantom: deterministic, scanner-like geometry, properly nested labels, the
contrast the paper is about (good vs mistimed TI), EMIDEC files on disk, and the CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from scarenhance.errors import InputError
from scarenhance.phantom import case_seed, generate_case, write_cases
from scarenhance.phantom.scar import PATTERNS

SEEDS = range(24)


@pytest.fixture(scope="module")
def cases():
    return {s: generate_case(s) for s in SEEDS}


def arrays(case):
    return sitk.GetArrayFromImage(case.image), sitk.GetArrayFromImage(case.labels)


def test_same_seed_same_case_and_different_seeds_differ():
    a, b, c = generate_case(7), generate_case(7), generate_case(8)
    assert np.array_equal(arrays(a)[0], arrays(b)[0]) and np.array_equal(arrays(a)[1], arrays(b)[1])
    assert a.info == b.info
    assert a.image.GetSize() != c.image.GetSize() or not np.array_equal(arrays(a)[0], arrays(c)[0])


def test_overriding_the_scar_keeps_anatomy_and_scanner():
    a = generate_case(5, scar_pattern="none")
    b = generate_case(5, scar_pattern="transmural")
    assert a.info["anatomy"] == b.info["anatomy"] and a.info["size"] == b.info["size"]
    assert a.info["acquisition"] == b.info["acquisition"]
    la, lb = arrays(a)[1], arrays(b)[1]
    assert np.array_equal(la == 1, lb == 1)  # same cavity
    assert not np.isin(la, (3, 4)).any() and (lb == 3).any()


def test_small_matrix_override_keeps_the_heart_in_view():
    for seed in range(4):
        case = generate_case(seed, size=(96, 80), n_slices=3)
        assert case.image.GetSize() == (96, 80, 3) and case.image.GetSpacing()[0] == 2.0
        labels = arrays(case)[1]
        border = np.concatenate([labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]], axis=None)
        assert (labels == 1).any() and not border.any()


def test_unknown_overrides_and_values_are_refused():
    with pytest.raises(TypeError, match="unknown overrides"):
        generate_case(0, scar="transmural")
    with pytest.raises(ValueError, match="scar pattern"):
        generate_case(0, scar_pattern="everywhere")
    with pytest.raises(ValueError, match="ti_quality"):
        generate_case(0, ti_quality="perfect")


def test_geometry_is_scanner_like(cases):
    oblique = non_square = 0
    for case in cases.values():
        img, lab = case.image, case.labels
        W, H, n = img.GetSize()
        sx, sy, sz = img.GetSpacing()
        assert img.GetPixelID() == sitk.sitkInt16 and lab.GetPixelID() == sitk.sitkUInt8
        assert 160 <= W <= 512 and 160 <= H <= 512 and 2 <= n <= 16
        assert sx == sy and 0.7 <= sx <= 2.0 and 5.0 <= sz <= 12.0
        assert 260 <= max(W, H) * sx <= 420 + 1e-6
        for name in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
            assert getattr(img, name)() == getattr(lab, name)(), name
        d = np.array(img.GetDirection()).reshape(3, 3)
        assert np.allclose(d @ d.T, np.eye(3), atol=1e-9)
        oblique += not np.allclose(np.abs(d), np.eye(3))
        non_square += W != H
        # LV centre (from the labels, mid-heart slice) within ±12 % of the FOV of the image centre
        labels = sitk.GetArrayFromImage(lab)
        assert (labels == 1).any() and (labels == 2).any(), case.name
        heart = np.flatnonzero((labels > 0).any(axis=(1, 2)))
        cy, cx = ndimage.center_of_mass(np.isin(labels[heart[len(heart) // 2]], (1, 2, 3, 4)))
        assert abs(cx - (W - 1) / 2) <= 0.12 * W + 2 and abs(cy - (H - 1) / 2) <= 0.12 * H + 2
    assert oblique >= 3 and non_square >= 3


def test_geometry_sampler_covers_the_ranges_and_nothing_else():
    from scarenhance.phantom.anatomy import sample_anatomy
    from scarenhance.phantom.generate import sample_geometry

    grids = [sample_geometry(np.random.default_rng(s), sample_anatomy(np.random.default_rng(s % 7))) for s in range(600)]
    for g in grids:
        W, H = g.size
        fov = np.array([W, H]) * g.spacing
        assert 160 <= min(W, H) and max(W, H) <= 512 and 260 <= fov.max() <= 420
        assert 0.7 <= g.spacing <= 2.0 and 5.0 <= g.slice_spacing <= 12.0 and 2 <= len(g.z) <= 16
        assert g.slice_thickness <= g.slice_spacing
        for c, d, j, f in zip(g.centre, g.drift, np.abs(g.jitter).max(axis=0), fov):
            assert abs(c) + j <= 0.12 * f and abs(c + d) + j <= 0.12 * f  # base and apex within ±12 % of the FOV
    share = lambda test: np.mean([test(g) for g in grids])  # noqa: E731
    assert 0.2 <= share(lambda g: g.size[0] != g.size[1]) <= 0.4
    assert 0.3 <= share(lambda g: not np.allclose(np.abs(np.reshape(g.direction, (3, 3))), np.eye(3))) <= 0.5
    assert share(lambda g: len(g.z) <= 6) >= 0.2 and share(lambda g: len(g.z) >= 10) >= 0.2
    assert share(lambda g: g.spacing < 1.0) >= 0.25 and share(lambda g: g.spacing > 1.2) >= 0.4


def test_heart_sizes_are_anatomical(cases):
    for case in cases.values():
        labels = sitk.GetArrayFromImage(case.labels)
        sp = case.image.GetSpacing()[0]
        cavity_area = (labels == 1).sum(axis=(1, 2)) * sp * sp
        k = int(np.argmax(cavity_area))
        diameter = 2 * np.sqrt(cavity_area[k] / np.pi)
        epi_diameter = 2 * np.sqrt(np.isin(labels[k], (1, 2, 3, 4)).sum() * sp * sp / np.pi)
        mean_wall = (epi_diameter - diameter) / 2
        assert 34 <= diameter <= 64, (case.name, diameter)
        assert 5 <= mean_wall <= (20 if case.info["anatomy"]["hcm"] else 13), (case.name, mean_wall)
    hcm = [c for c in cases.values() if c.info["anatomy"]["hcm"]]
    assert all(15 <= c.info["anatomy"]["septum_mm"] <= 26 for c in hcm)


def _check_nesting(labels: np.ndarray, name: str) -> None:
    for k, plane in enumerate(labels):
        wall = np.isin(plane, (2, 3, 4))
        cavity = plane == 1
        if not wall.any():
            assert not cavity.any(), f"{name} slice {k}: cavity without myocardium"
            continue
        assert ndimage.label(wall)[1] == 1, f"{name} slice {k}: myocardium is not one ring"
        # the cavity never touches background: the wall closes around it
        assert not (ndimage.binary_dilation(cavity) & (plane == 0)).any(), f"{name} slice {k}: open cavity"
        scar = np.isin(plane, (3, 4))
        assert not (scar & ~ndimage.binary_fill_holes(wall | cavity)).any()
        # every no-reflow core sits in an infarct
        cores, n = ndimage.label(plane == 4)
        for i in range(1, n + 1):
            assert (ndimage.binary_dilation(cores == i) & (plane == 3)).any(), f"{name} slice {k}: bare no-reflow"


def test_labels_are_nested_for_every_pattern(cases):
    for case in cases.values():
        _check_nesting(arrays(case)[1], case.name)
    for i, pattern in enumerate(PATTERNS):
        labels = arrays(generate_case(100 + i, scar_pattern=pattern))[1]
        _check_nesting(labels, pattern)
        assert (labels == 1).any() and (labels == 2).any()
        assert np.isin(labels, (3, 4)).any() == (pattern != "none"), pattern
        assert (labels == 4).any() == (pattern == "no_reflow"), pattern


def test_scar_mix_and_extent(cases):
    fractions = [c.info["scar"]["fraction_of_myocardium"] for c in cases.values()]
    with_scar = [f for f in fractions if f > 0]
    assert 0.5 <= len(with_scar) / len(fractions) <= 0.9
    assert max(fractions) <= 0.46
    # scar sits in some slices, not all (ischaemic scar follows one territory)
    partial = [c for c in cases.values() if 0 < len(c.info["scar"]["slices"]) < c.info["size"][2]]
    assert len(partial) >= len(with_scar) // 2


def _means(case):
    img, lab = arrays(case)
    return img[lab == 1].mean(), img[lab == 2].mean(), img[lab == 3].mean()


def test_scar_is_bright_when_ti_is_good_and_faint_when_mistimed():
    good, poor = [], []
    for seed in range(200, 212):
        blood, myo, scar = _means(generate_case(seed, scar_pattern="transmural", ti_quality="good"))
        assert scar > 1.35 * myo and blood > 1.5 * myo, seed
        good.append(scar / myo)
        blood, myo, scar = _means(generate_case(seed, scar_pattern="transmural", ti_quality="poor"))
        poor.append(scar / myo)
    assert max(abs(np.log(r)) for r in poor) < min(np.log(r) for r in good)
    assert 1.8 <= np.median(good) <= 4.0


def test_intensities_look_like_a_scanner(cases):
    blood_myo = []
    for case in cases.values():
        img, lab = arrays(case)
        assert img.min() >= 0 and 150 <= np.percentile(img, 99.5) <= 4000 and img.max() < 32767  # never clipped
        corner = img[:, :8, :8]
        assert corner.mean() < 0.3 * img[lab == 1].mean()  # air outside the body is dark
        if case.info["acquisition"]["ti_quality"] == "good":
            blood_myo.append(img[lab == 1].mean() / img[lab == 2].mean())
    assert 1.6 <= np.median(blood_myo) <= 3.5


def test_write_cases_round_trips_through_nifti(tmp_path):
    folders = write_cases(tmp_path, 2, seed=3)
    assert [f.name for f in folders] == ["Case_001", "Case_002"]
    for i, folder in enumerate(folders, start=1):
        image = sitk.ReadImage(str(folder / "Images" / f"{folder.name}.nii.gz"))
        labels = sitk.ReadImage(str(folder / "Contours" / f"{folder.name}.nii.gz"))
        case = generate_case(case_seed(3, i))
        assert image.GetPixelID() == sitk.sitkInt16 and labels.GetPixelID() == sitk.sitkUInt8
        assert np.array_equal(sitk.GetArrayFromImage(image), arrays(case)[0])
        assert np.array_equal(sitk.GetArrayFromImage(labels), arrays(case)[1])
        for got in (image, labels):
            assert got.GetSize() == case.image.GetSize()
            assert np.allclose(got.GetSpacing(), case.image.GetSpacing(), atol=1e-5)
            assert np.allclose(got.GetOrigin(), case.image.GetOrigin(), atol=1e-4)
            assert np.allclose(got.GetDirection(), case.image.GetDirection(), atol=1e-6)
        info = json.loads((folder / f"{folder.name}.json").read_text())
        assert info["name"] == folder.name and info["seed"] == case_seed(3, i)


def test_seeds_give_disjoint_case_sets():
    a = {case_seed(0, i) for i in range(1, 1001)}
    b = {case_seed(1, i) for i in range(1, 1001)}
    assert not a & b


def _cli(*argv):
    from scarenhance.commands import phantom

    parser = argparse.ArgumentParser()
    phantom.add_arguments(parser)
    return phantom.run(parser.parse_args(list(argv)))


def test_cli_writes_emidec_layout_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "phantoms"
    assert _cli("--out", str(out), "--cases", "2", "--seed", "4") == 0
    assert sorted(p.name for p in out.iterdir()) == ["Case_001", "Case_002"]
    for name in ("Case_001", "Case_002"):
        assert (out / name / "Images" / f"{name}.nii.gz").is_file()
        assert (out / name / "Contours" / f"{name}.nii.gz").is_file()
    before = {p: p.read_bytes() for p in out.rglob("*.nii.gz")}
    with pytest.raises(InputError, match="Case_001.*already exists"):
        _cli("--out", str(out), "--cases", "3", "--seed", "9")
    assert {p: p.read_bytes() for p in out.rglob("*.nii.gz")} == before
    assert not (out / "Case_003").exists()  # refused before writing anything
    with pytest.raises(InputError, match="scar-pattern"):
        _cli("--out", str(tmp_path / "other"), "--cases", "1", "--scar-pattern", "spots")


def test_scarenhance_phantom_command_exits_2_with_the_folder_named(tmp_path, capsys):
    from scarenhance.cli import main

    out = tmp_path / "set"
    assert main(["phantom", "--out", str(out), "--cases", "1", "--seed", "2"]) == 0
    assert main(["phantom", "--out", str(out), "--cases", "1", "--seed", "2"]) == 2
    err = capsys.readouterr().err
    assert "scarenhance phantom: error:" in err and str(out / "Case_001") in err and "already exists" in err


def test_emidec_reader_loads_the_phantoms(tmp_path):
    datasets = pytest.importorskip("scarenhance.datasets", reason="scarenhance.datasets (EMIDEC reader) is not in this tree")
    from scarenhance import labels as L
    from scarenhance.phantom import canonical_labels

    write_cases(tmp_path, 2, seed=0, scar_pattern="no_reflow")
    loaded = list(datasets.iter_cases(tmp_path))
    assert [c.name for c in loaded] == ["Case_001", "Case_002"]
    for i, case in enumerate(loaded, start=1):
        phantom = generate_case(case_seed(0, i), scar_pattern="no_reflow")
        canonical = sitk.GetArrayFromImage(case.labels)
        assert np.array_equal(canonical, canonical_labels(phantom))
        raw = arrays(phantom)[1]
        assert np.array_equal(canonical == L.SCAR, np.isin(raw, (3, 4)))  # no-reflow counts as scar
        assert np.array_equal(sitk.GetArrayFromImage(case.image), arrays(phantom)[0])
