"""The randomized data engine: deterministic, labels aligned with the image, every effect real,
the heart classes consistent, and the field of view in its documented range."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scarenhance import labels as L
from scarenhance.segmentation.data import CropDataset, slices_of_bank
from scarenhance.segmentation.intensity import MINMAX, PERCENTILE, normalise, policy_of
from scarenhance.synth import SynthRanges, synth_slice
from scarenhance.synth import acquisition as A
from scarenhance.synth import appearance
from scarenhance.synth import structures as S
from scarenhance.synth.bank import make_bank

NO_EFFECTS = {name: 0.0 for name in A.EFFECTS}


def test_a_seed_gives_the_same_slice_and_another_seed_another():
    a, b, c = synth_slice(11), synth_slice(11), synth_slice(12)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.classes, b.classes) and a.info == b.info
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


def test_the_bank_is_the_same_whatever_the_number_of_processes():
    one = make_bank(4, seed=3, processes=1)
    assert all(np.array_equal(x, synth_slice([3, i]).image) for i, x in enumerate(one.images))


def test_labels_and_image_are_aligned_pixel_for_pixel(monkeypatch):
    """With a distinct flat intensity per structure and no effects, the image *is* the label map's lookup:
    any shift between the two (from the pose, the warp or the partial-volume blend) would show."""
    flat = np.arange(S.COUNT, dtype=float) / S.COUNT
    monkeypatch.setattr(appearance, "sample_intensities", lambda rng, *ranges: ("lge", flat.copy(), np.zeros(S.COUNT)))
    ranges = SynthRanges(effects=NO_EFFECTS, partial_volume=0.0, warp_mm=(4.0, 5.0))
    for seed in range(6):
        s = synth_slice(seed, ranges)
        assert np.allclose(s.image, flat[s.structures], atol=1e-6)
        assert np.array_equal(s.canonical, S.to_canonical(s.structures))
        assert np.array_equal(s.classes, L.heart_classes(s.canonical))


def base_slice():
    """A clean rendered slice with a heart, for testing each effect alone."""
    ranges = SynthRanges(effects=NO_EFFECTS, partial_volume=0.0, heart_fraction=(0.1, 0.1))
    for seed in range(50):
        s = synth_slice(seed, ranges)
        if (s.classes == 2).sum() > 50 and (s.classes == 1).sum() > 50:
            return s
    raise AssertionError("no slice with a heart in 50 seeds")


@pytest.mark.parametrize("name", list(A.EFFECTS))
def test_every_configured_effect_changes_the_image(name):
    s = base_slice()
    ranges = A.AcquisitionRanges()
    _, effect = A.EFFECTS[name]
    changed = 0
    for seed in range(3):  # an effect may be mild in one draw; it must act in most
        out, classes = effect(s.image.copy(), s.classes.copy(), np.random.default_rng(seed), ranges)
        assert out.shape == s.image.shape and classes.shape == s.classes.shape and out.dtype == np.float32
        changed += float(np.abs(out - s.image).max()) > 1e-3
        if name in ("zero_masks", "dropout"):  # blanked pixels are exactly 0 and lose their heart labels
            blanked = (out == 0) & (s.image != 0)
            assert not classes[blanked].any()
            assert np.array_equal(classes[~blanked], s.classes[~blanked])
        else:
            assert np.array_equal(classes, s.classes)
    assert changed >= 2, f"{name} left the image unchanged"


def test_quantisation_gives_integers_and_zero_masks_exact_zeros():
    s = base_slice()
    q, _ = A.quantise(s.image, s.classes, np.random.default_rng(0), A.AcquisitionRanges())
    assert np.array_equal(q, np.rint(q)) and q.min() >= 0
    z, _ = A.zero_masks(s.image + 1.0, s.classes, np.random.default_rng(1), A.AcquisitionRanges())
    assert (z == 0).any()


def test_heart_fraction_and_sizes_stay_in_their_ranges():
    ranges = SynthRanges()
    fractions, diameters = [], []
    for seed in range(40):
        s = synth_slice(seed, ranges)
        if 0.0 <= s.info["level"] <= 0.6 and s.info["shape"][0] < ranges.max_side_px and s.info["shape"][1] < ranges.max_side_px:
            fractions.append(((s.structures >= S.LV_MYOCARDIUM) & (s.structures <= S.TRABECULAE)).mean())
        diameters.append(s.info["lv_diameter_mm"])
    assert 0.005 < min(fractions) and max(fractions) < 0.45, (min(fractions), max(fractions))
    assert max(diameters) <= ranges.heart_mm[1] + 1e-6


def test_crops_keep_image_and_labels_together():
    """Feed the class map itself as the image: after crop, quarter turn and flip, the two must still agree."""
    classes = [synth_slice(s).classes for s in range(4)]
    images = [c.astype(np.float32) / 2 for c in classes]
    ds = CropDataset(images, classes, crop=64, seed=0)
    ds._intensity = []  # no intensity change: the test compares values
    for i in range(len(ds)):
        for _ in range(3):
            item = ds[i]
            assert item["image"].shape == (1, 64, 64) and item["label"].shape == (1, 64, 64)
            assert np.array_equal((item["image"].numpy() * 2).round().astype(np.int64), item["label"].numpy())


def test_crop_streams_differ_per_draw_and_repeat_per_seed():
    bank = make_bank(3, seed=5, processes=1)
    images, classes = slices_of_bank(bank)
    a, b = CropDataset(images, classes, 64, seed=1), CropDataset(images, classes, 64, seed=1)
    first, again = a[0]["image"], a[0]["image"]
    assert not np.array_equal(first, again)  # a second draw of an index is a new crop
    assert np.array_equal(first, b[0]["image"])  # the same seed replays the same sequence


def test_percentile_normalisation_ignores_one_bright_pixel_and_the_masked_zeros():
    rng = np.random.default_rng(0)
    s = np.zeros((1, 64, 64), np.float32)
    s[0, 8:56, 8:56] = rng.uniform(10, 50, (48, 48))  # tissue; the border is a registration mask at 0
    bright = s.copy()
    bright[0, 30, 30] = 5000.0
    a, b = normalise(s, PERCENTILE), normalise(bright, PERCENTILE)
    inside = np.ones((64, 64), bool)
    inside[30, 30] = False
    assert np.abs(a[0][inside] - b[0][inside]).max() < 0.02
    assert b.max() == 1.0 and b.min() == 0.0
    # min-max collapses the tissue under the outlier
    assert normalise(bright, MINMAX)[0, 8:56, 8:56].mean() < 0.01
    assert policy_of({"scarenhance": {"input": {}}}) == MINMAX  # a round-1 model folder
    assert policy_of({"scarenhance": {"input": {"normalisation": PERCENTILE}}}) == PERCENTILE


def test_wider_ranges_are_accepted_for_unseen_families():
    wide = dataclasses.replace(SynthRanges(), heart_mm=(30.0, 40.0), heart_fraction=(0.005, 0.01),
                               acquisition=dataclasses.replace(A.AcquisitionRanges(), pixel_mm=(2.6, 3.2)))
    s = synth_slice(1, wide)
    assert s.info["lv_diameter_mm"] <= 40.0 + 1e-6


def test_randomized_rois_cover_dilation_erosion_and_irregular_outlines_deterministically():
    from scarenhance.diffusion.roi_randomization import randomized_roi, randomized_roi_volume

    canonical = np.zeros((80, 80), np.uint8)
    yy, xx = np.mgrid[:80, :80]
    r = np.hypot(yy - 40, xx - 40)
    canonical[r < 20] = L.MYOCARDIUM
    canonical[r < 12] = L.BLOOD
    heart = r < 20
    sizes = [randomized_roi(canonical, (1.0, 1.0), np.random.default_rng(s)).sum() for s in range(40)]
    assert min(sizes) < heart.sum() < max(sizes)  # eroded and dilated ROIs both occur
    assert max(sizes) <= (r <= 30.5).sum()  # never beyond 10 mm
    assert len(set(sizes)) > 10
    assert not randomized_roi(np.zeros((8, 8), np.uint8), (1.0, 1.0), np.random.default_rng(0)).any()
    volume = np.stack([canonical] * 3)
    a = randomized_roi_volume(volume, (8.0, 1.0, 1.0), 0, seed=1, name="Case_001")
    assert np.array_equal(a, randomized_roi_volume(volume, (8.0, 1.0, 1.0), 0, seed=1, name="Case_001"))
    assert not np.array_equal(a, randomized_roi_volume(volume, (8.0, 1.0, 1.0), 0, seed=1, name="Case_002"))


def test_synth_cases_are_written_in_the_emidec_layout_and_read_back(tmp_path):
    from scarenhance import datasets
    from scarenhance.synth.write import write_synth_cases

    folders = write_synth_cases(tmp_path / "s", 2, seed=3, ranges=SynthRanges(max_side_px=96))
    case = datasets.load_case(tmp_path / "s", folders[0].name)
    assert datasets.detect_layout(tmp_path / "s") == "emidec"
    assert set(np.unique(sitk_array(case.labels))) <= {L.BACKGROUND, L.BLOOD, L.MYOCARDIUM, L.SCAR}
    with pytest.raises(Exception, match="already exists"):
        write_synth_cases(tmp_path / "s", 2, seed=3)


def test_lge_contrast_always_draws_scar_visibly_brighter_than_healthy_myocardium():
    """The enhancer's data: no random or short-TI contrasts; the default ranges still draw both."""
    lge = SynthRanges().lge_contrast()
    draws = [appearance.sample_intensities(np.random.default_rng(i), lge.random_contrast, lge.short_ti, lge.min_scar_ratio)
             for i in range(300)]
    assert {regime for regime, _, _ in draws} == {"lge"}
    scar, myo, blood = (np.array([m[t] for _, m, _ in draws]) for t in (S.SCAR, S.LV_MYOCARDIUM, S.LV_BLOOD))
    assert np.all(scar >= 1.3 * myo - 1e-9) and np.all(myo < blood)
    default = [appearance.sample_intensities(np.random.default_rng(i)) for i in range(300)]
    assert any(regime == "random" for regime, _, _ in default)
    assert any(m[S.SCAR] < m[S.LV_MYOCARDIUM] for regime, m, _ in default if regime == "lge")  # short TI


def test_a_stack_shares_one_contrast_draw_so_one_slice_of_its_seed_tells_it():
    """evaluation/families.py reads a synth-unseen stack's contrast from one synth_slice of its seed."""
    ranges = SynthRanges(random_contrast=0.5, max_side_px=64)
    seen = set()
    for seed in range(12):
        one = synth_slice(seed, ranges).info["contrast"]
        at_levels = {synth_slice(seed, dataclasses.replace(ranges, levels=(lv, lv))).info["contrast"]
                     for lv in (-0.05, 0.3, 0.9, 1.05)}
        assert at_levels == {one}
        seen.add(one)
    assert seen == {"lge", "random"}


def test_synth_command_writes_lge_contrast_cases_whose_scar_is_brighter(tmp_path):
    from scarenhance import datasets
    from scarenhance.cli import main

    assert main(["synth", "--out", str(tmp_path / "s"), "--cases", "3", "--seed", "5", "--contrast", "lge"]) == 0
    ratios = []
    for name in datasets.list_cases(tmp_path / "s"):
        case = datasets.load_case(tmp_path / "s", name)
        image, labels = sitk_array(case.image).astype(float), sitk_array(case.labels)
        if (labels == L.SCAR).sum() > 20:
            ratios.append(image[labels == L.SCAR].mean() / image[labels == L.MYOCARDIUM].mean())
    assert ratios and min(ratios) > 1.0


def test_synth_command_noise_option_widens_the_noise_and_refuses_a_reversed_range(tmp_path, capsys):
    from scarenhance import datasets
    from scarenhance.cli import main

    def myocardium_cv(folder, noise):
        args = ["synth", "--out", str(folder), "--cases", "2", "--seed", "8", "--contrast", "lge"]
        assert main(args + (["--noise", *noise] if noise else [])) == 0
        cvs = []
        for name in datasets.list_cases(folder):
            case = datasets.load_case(folder, name)
            image, labels = sitk_array(case.image).astype(float), sitk_array(case.labels)
            for k in range(image.shape[0]):
                myo = labels[k] == L.MYOCARDIUM
                if myo.sum() > 30:
                    cvs.append(image[k][myo].std() / image[k][myo].mean())
        return float(np.median(cvs))

    assert myocardium_cv(tmp_path / "noisy", ["0.25", "0.3"]) > myocardium_cv(tmp_path / "default", None) + 0.1
    assert main(["synth", "--out", str(tmp_path / "bad"), "--noise", "0.3", "0.1"]) == 2
    assert "--noise" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_scar_reach_sets_where_the_scar_lies_between_myocardium_and_blood():
    """scar_reach (synth --scar-reach): u = (scar − myocardium) / (blood − myocardium) is drawn from it; the
    default keeps scar within 1.3× the blood, a reach above 1 makes scars brighter than the blood pool."""
    def reach(r):
        draws = [appearance.sample_intensities(np.random.default_rng(i), 0.0, 0.0, 0.0, r) for i in range(200)]
        scar, myo, blood = (np.array([m[t] for _, m, _ in draws]) for t in (S.SCAR, S.LV_MYOCARDIUM, S.LV_BLOOD))
        return (scar - myo) / (blood - myo), scar / blood

    u, ratio = reach((1.5, 2.5))
    assert u.min() >= 1.5 - 1e-9 and u.max() <= 2.5 + 1e-9 and np.all(ratio > 1.0)
    u, ratio = reach((0.35, 1.3))
    assert u.min() >= 0.35 - 1e-9 and u.max() <= 1.3 + 1e-9 and ratio.max() <= 1.3
    default = [appearance.sample_intensities(np.random.default_rng(i), 0.0, 0.0) for i in range(50)]
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(default, (appearance.sample_intensities(
        np.random.default_rng(i), 0.0, 0.0, 0.0, (0.35, 1.3)) for i in range(50))))  # the default is that range


def test_synth_command_scar_reach_makes_scar_brighter_than_blood_and_refuses_a_bad_range(tmp_path, capsys):
    from scarenhance import datasets
    from scarenhance.cli import main

    args = ["synth", "--out", str(tmp_path / "s"), "--cases", "3", "--seed", "5", "--contrast", "lge", "--scar-reach", "1.6", "2.4"]
    assert main(args) == 0
    ratios = []
    for name in datasets.list_cases(tmp_path / "s"):
        case = datasets.load_case(tmp_path / "s", name)
        image, labels = sitk_array(case.image).astype(float), sitk_array(case.labels)
        for k in range(image.shape[0]):
            if (labels[k] == L.SCAR).sum() > 20 and (labels[k] == L.BLOOD).sum() > 20:
                ratios.append(image[k][labels[k] == L.SCAR].mean() / image[k][labels[k] == L.BLOOD].mean())
    assert ratios and np.median(ratios) > 1.1
    assert main(["synth", "--out", str(tmp_path / "bad"), "--scar-reach", "2", "1"]) == 2
    assert "--scar-reach" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def sitk_array(image):
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(image)
