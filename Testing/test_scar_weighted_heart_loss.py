"""The heart model's scar weight: scar marked in the training maps, the extra cross-entropy over scar pixels,
the validation metric that sees scar called blood pool, the CLI option, and the synth bank's worker processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.losses import DiceCELoss

from scarenhance import cli
from scarenhance import labels as L
from scarenhance.errors import InputError
from scarenhance.evaluation import metrics
from scarenhance.segmentation.data import slices_of_bank
from scarenhance.segmentation.train import heart_loss, train_segmentation, validation_score
from scarenhance.synth.bank import make_bank

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def _ring(size: int = 24) -> np.ndarray:
    """Canonical labels: a blood disc in a myocardial ring whose right half (inner rim) is scar."""
    yy, xx = np.mgrid[:size, :size] - size / 2 + 0.5
    r = np.hypot(yy, xx)
    out = np.zeros((size, size), np.uint8)
    out[r < 9] = L.MYOCARDIUM
    out[r < 5] = L.BLOOD
    out[(r >= 5) & (r < 7) & (xx > 0)] = L.SCAR
    return out


def test_scar_is_marked_in_training_maps_and_folds_back_to_myocardium():
    labels = _ring()
    marked = L.heart_classes(labels, mark_scar=True)
    assert np.array_equal(marked == L.TRAIN_SCAR, labels == L.SCAR)
    assert np.array_equal(L.fold_scar(marked), L.heart_classes(labels))
    assert np.array_equal(L.fold_scar(torch.from_numpy(marked)).numpy(), L.heart_classes(labels))


def test_the_synth_bank_marks_its_scar_for_training():
    bank = make_bank(12, seed=4, processes=1)
    _, classes = slices_of_bank(bank)
    assert any((c == L.TRAIN_SCAR).any() for c in classes)  # scar_probability 0.7: some of 12 slices have scar
    for c, raw, canonical in zip(classes, bank.classes, bank.canonical):
        assert np.array_equal(c == L.TRAIN_SCAR, canonical == L.SCAR)
        assert np.array_equal(L.fold_scar(c), raw)


def _logits_calling_scar_blood(labels: np.ndarray) -> torch.Tensor:
    """Confident logits that are right everywhere except on the scar, which they call blood pool."""
    called = L.heart_classes(labels)
    called[labels == L.SCAR] = L.CLASS_BLOOD
    logits = torch.nn.functional.one_hot(torch.from_numpy(called).long(), 3).permute(2, 0, 1).float() * 4.0
    return logits[None]


def test_the_scar_term_is_the_cross_entropy_averaged_over_scar_pixels():
    labels = _ring()
    logits = _logits_calling_scar_blood(labels)
    target = torch.from_numpy(L.heart_classes(labels, mark_scar=True)).long()[None, None]
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    plain = heart_loss(dice_ce, logits, target, 0.0)
    assert plain == pytest.approx(float(dice_ce(logits, L.fold_scar(target))))
    # by hand: on a scar pixel the logits are 4 for blood, 0 elsewhere; the truth is myocardium
    scar_ce = -np.log(1.0 / (np.exp(4.0) + 2.0))
    assert float(heart_loss(dice_ce, logits, target, 2.5)) == pytest.approx(float(plain) + 2.5 * scar_ce, rel=1e-5)


def test_a_batch_without_scar_adds_nothing_and_right_scar_costs_little():
    labels = _ring()
    no_scar = np.where(labels == L.SCAR, L.MYOCARDIUM, labels)
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    target = torch.from_numpy(L.heart_classes(no_scar, mark_scar=True)).long()[None, None]
    logits = _logits_calling_scar_blood(labels)
    assert float(heart_loss(dice_ce, logits, target, 10.0)) == pytest.approx(float(heart_loss(dice_ce, logits, target, 0.0)))
    right = torch.nn.functional.one_hot(torch.from_numpy(L.heart_classes(labels)).long(), 3).permute(2, 0, 1).float()[None] * 4.0
    marked = torch.from_numpy(L.heart_classes(labels, mark_scar=True)).long()[None, None]
    extra = float(heart_loss(dice_ce, right, marked, 1.0)) - float(heart_loss(dice_ce, right, marked, 0.0))
    assert extra == pytest.approx(-np.log(np.exp(4.0) / (np.exp(4.0) + 2.0)), rel=1e-5)


def test_validation_sees_scar_called_blood_that_the_roi_dice_misses():
    labels = _ring()
    truth = L.heart_classes(labels, mark_scar=True)
    called = L.heart_classes(labels)
    assert validation_score(called, truth) == pytest.approx(1.0)
    called[labels == L.SCAR] = L.CLASS_BLOOD
    myo, scar = int(((labels == L.MYOCARDIUM) | (labels == L.SCAR)).sum()), int((labels == L.SCAR).sum())
    myo_dice = 2 * (myo - scar) / (2 * myo - scar)
    assert validation_score(called, truth) == pytest.approx(0.5 * (1.0 + myo_dice))


def test_a_negative_scar_weight_is_refused_and_the_option_reaches_training(monkeypatch, tmp_path):
    with pytest.raises(InputError, match="scar weight"):
        train_segmentation(None, tmp_path / "m", synth=4, scar_weight=-1.0)
    seen = {}

    def fake(data, out, **kwargs):
        seen.update(kwargs)
        return {"val_dice": 0.5, "best_epoch": 1, "model": str(out)}

    monkeypatch.setattr("scarenhance.segmentation.train.train_segmentation", fake)
    assert cli.main(["train-seg", "--synth", "4", "--scar-weight", "1.5", "--out", str(tmp_path / "m")]) == 0
    assert seen["scar_weight"] == 1.5


def test_the_bank_does_not_hang_after_torch_ran_threads(tmp_path):
    """train-seg --init-from loads a network before it makes the bank; forked workers then deadlocked in torch."""
    script = tmp_path / "bank_after_torch.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "ScarEnhance")!r})
        if __name__ == "__main__":
            import torch
            torch.set_num_threads(2)
            torch.nn.Conv2d(1, 8, 3)(torch.rand(4, 1, 96, 96)).sum()  # OpenMP threads now exist
            from scarenhance.synth.bank import make_bank
            print(len(make_bank(64, seed=2, processes=2)))
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "64"


def test_scar_called_blood_counts_labelled_scar_only():
    labels = _ring()
    called = L.heart_classes(labels)
    assert metrics.scar_called_blood(called, labels) == 0.0
    scar = labels == L.SCAR
    first_half = scar & (np.cumsum(scar.ravel()).reshape(scar.shape) <= scar.sum() // 2)
    called[first_half] = L.CLASS_BLOOD
    called[labels == L.MYOCARDIUM] = L.CLASS_BLOOD  # healthy myocardium called blood does not count
    assert metrics.scar_called_blood(called, labels) == pytest.approx((scar.sum() // 2) / scar.sum())
    assert np.isnan(metrics.scar_called_blood(called, np.where(scar, L.MYOCARDIUM, labels)))
