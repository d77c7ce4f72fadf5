"""The case-level bootstrap interval (evaluation/stats.py) and the enhancement benchmark's use of it."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import pytest

from scarenhance.evaluation.stats import case_bootstrap_interval

ROOT = Path(__file__).resolve().parents[1]


def _mean_x(rows):
    return float(np.mean([r["x"] for r in rows]))


def test_whole_cases_are_drawn_not_single_slices():
    # case a: three slices at 10, case b: one at 0. Resampling cases gives {a, a} = 10, {a, b} = 7.5, {b, b} = 0
    # (with chances 1/4, 1/2, 1/4); resampling slices would also give 2.5 and 5.
    rows = [{"case": "a", "x": 10.0}] * 3 + [{"case": "b", "x": 0.0}]
    seen = set()
    low, high = case_bootstrap_interval(rows, lambda rs: seen.add(_mean_x(rs)) or _mean_x(rs), n_resamples=400)
    assert seen == {0.0, 7.5, 10.0}
    assert (low, high) == (0.0, 10.0)
    assert case_bootstrap_interval(rows, _mean_x, level=0.4) == (7.5, 7.5)  # the middle 40 %: all {a, b}


def test_the_interval_brackets_the_estimate_and_repeats_with_its_seed():
    rng = np.random.default_rng(3)
    rows = [{"case": f"c{i // 3}", "x": float(v)} for i, v in enumerate(rng.normal(5, 2, 30))]
    low, high = case_bootstrap_interval(rows, _mean_x, seed=7)
    assert low < _mean_x(rows) < high
    assert case_bootstrap_interval(rows, _mean_x, seed=7) == (low, high)
    half_low, half_high = case_bootstrap_interval(rows, _mean_x, level=0.5, seed=7)
    assert low < half_low < half_high < high


def test_one_case_empty_rows_undefined_statistics_and_bad_levels():
    one = [{"case": "a", "x": 1.0}, {"case": "a", "x": 3.0}]
    assert case_bootstrap_interval(one, _mean_x) == (2.0, 2.0)  # nothing to say how far it would move
    assert case_bootstrap_interval([], _mean_x) is None
    assert case_bootstrap_interval(one, lambda rs: math.nan) is None
    two = [{"case": "a", "x": 1.0}, {"case": "b", "x": math.nan}]
    low, high = case_bootstrap_interval(two, _mean_x)  # resamples holding b are not finite and are left out
    assert (low, high) == (1.0, 1.0)
    with pytest.raises(ValueError, match="level"):
        case_bootstrap_interval(one, _mean_x, level=1.0)


def _benchmark():
    spec = importlib.util.spec_from_file_location("enh_families", ROOT / "benchmarks" / "enh_families.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(case, before, after, remote, scar=True):
    row = {"case": case, "slice": 1, "contrast": "lge", "has_scar": scar, "remote_change": remote, "blood_change": 0.0}
    if scar:
        row.update(cnr_scar_myo_before=before, cnr_scar_myo_target=2 * before, cnr_scar_myo_after=after,
                   cnr_scar_blood_before=1.0, cnr_scar_blood_target=1.0, cnr_scar_blood_after=1.0)
    return row


def test_the_benchmark_recomputes_an_earlier_results_summaries_and_intervals():
    bench = _benchmark()
    rows = [_row("a", 1.0, 1.5, 0.01), _row("b", 1.0, 1.1, 0.05), _row("b", 0, 0, 0.02, scar=False)]
    old = {"seed": 1, "families": [{"family": "phantom", "rows": rows, "cnr_scar_myo_gain": 99.0}]}
    family = bench.resummarise(old)["families"][0]
    assert family["cnr_scar_myo_gain"] == pytest.approx(1.3 / 1.0 - 1)  # mean after / mean before − 1
    assert family["remote_change_scar_slices"] == pytest.approx(0.03)
    low, high = family["cnr_scar_myo_gain_ci95"]
    assert low == pytest.approx(0.1) and high == pytest.approx(0.5)  # {b, b} and {a, a}
    assert family["remote_change_scar_free_slices_ci95"] == [0.02, 0.02]
    assert old["families"][0]["cnr_scar_myo_gain"] == 99.0  # the earlier result itself is left as it was


def test_where_the_gain_goes_is_summarised_and_an_older_result_without_it_still_prints(capsys):
    bench = _benchmark()
    rows = [dict(_row("a", 1.0, 1.5, 0.01), scar_rise=2.0, scar_rise_target=10.0, myo_sd_change=0.10),
            dict(_row("b", 1.0, 1.1, 0.05), scar_rise=4.0, scar_rise_target=30.0, myo_sd_change=-0.02)]
    family = bench.resummarise({"seed": 1, "families": [{"family": "phantom", "rows": rows, "voxels_changed_outside_roi": 0}]})["families"][0]
    assert (family["scar_rise"], family["scar_rise_target"]) == (3.0, 20.0)
    assert family["myo_sd_change"] == pytest.approx(0.04)
    bench.print_table([family])
    assert "scar rose   +3.0 of the target's  +20.0; myocardium SD  +4.0 %" in capsys.readouterr().out
    older = bench.resummarise({"seed": 1, "families": [{"family": "phantom", "rows": [_row("a", 1.0, 1.5, 0.01)],
                                                        "voxels_changed_outside_roi": 0}]})["families"][0]
    bench.print_table([older])
    assert "scar rose" not in capsys.readouterr().out


def test_a_dataset_measurement_never_writes_over_the_official_result(tmp_path, capsys):
    bench = _benchmark()
    with pytest.raises(SystemExit):
        bench.main(["--data", str(tmp_path)])
    assert "needs its own --json" in capsys.readouterr().err


def test_a_dataset_folder_becomes_evaluation_cases(tmp_path):
    from scarenhance.phantom import write_cases

    write_cases(tmp_path / "d", 2, seed=5, n_slices=2, size=(48, 48), spacing=1.6)
    items = _benchmark().dataset_cases(str(tmp_path / "d"), 1)
    assert len(items) == 1 and items[0].labels.shape == sitk.GetArrayFromImage(items[0].image).shape
    assert set(np.unique(items[0].labels)) <= {0, 1, 2, 3}


def test_scar_slices_are_split_by_scar_brighter_than_blood_and_older_rows_give_no_split(capsys):
    bench = _benchmark()
    rows = [dict(_row("a", 1.0, 2.0, 0.01), scar_above_blood=False), dict(_row("b", 1.0, 0.5, 0.03), scar_above_blood=True),
            dict(_row("c", 2.0, 2.5, 0.02), scar_above_blood=True), _row("c", 0, 0, 0.0, scar=False)]
    family = bench.resummarise({"seed": 1, "families": [{"family": "phantom", "rows": rows, "voxels_changed_outside_roi": 0}]})["families"][0]
    above, rest = family["scar_above_blood"], family["scar_not_above_blood"]
    assert above["scar_slices"] == 2 and above["cnr_scar_myo_gain"] == pytest.approx(1.5 / 1.5 - 1)
    assert above["slices_worse"] == 1 and above["remote_change_scar_slices"] == pytest.approx(0.025)
    assert rest["scar_slices"] == 1 and rest["cnr_scar_myo_gain"] == pytest.approx(1.0)
    bench.print_table([family])
    out = capsys.readouterr().out
    assert "scar > blood" in out and "scar ≤ blood" in out
    older = bench.resummarise({"seed": 1, "families": [{"family": "phantom", "rows": [_row("a", 1.0, 1.5, 0.01)],
                                                        "voxels_changed_outside_roi": 0}]})["families"][0]
    assert "scar_above_blood" not in older
