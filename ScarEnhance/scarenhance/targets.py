"""Scar-enhanced training targets by tissue-specific gamma correction (Hasny et al. 2024, §2.1).

Each 2D slice is first scaled to [0, 255] (``geometry.volume_to_slices``). Then, per slice,

    I_e = 255 · (I / 255) ** (1 / γ)        (the paper's I^(1/γ) on intensities normalised to [0, 1])

is applied to two tissues only:

- scar (canonical label 3): γ > 1 brightens it. γ comes from the slice's mean scar intensity
  (authors' bands: mean < 60.46 → 1.7, < 150 → 1.6, else 1.5: darker scar, stronger γ);
- blood (label 1): a blood pool brighter than the dataset-wide mean blood intensity gets γ < 1,
  which darkens it (authors' bands: mean < 86.03 → 0.9, < 115.59 → 0.8, < 130.95 → 0.7, else 0.6).
  "The average is calculated from the mean intensities of all the blood pools in the dataset":
  ``dataset_blood_mean`` computes it as the mean over slices of each slice's blood-pool mean. The
  authors' value for their data, 56.47, is used only when no dataset mean is given.

Scar/blood guard. The paper makes the scar's γ depend on "the original contrast between the scar and
the blood pool, ensuring that brightened scars are of different intensity than the blood pool" but gives
no rule. Ours: after the band γ and the blood correction, if the enhanced scar mean is within
``scar_blood_margin`` (on the 0–255 scale) of the corrected blood mean, the scar γ is raised in steps
of ``scar_gamma_step`` up to ``scar_gamma_max`` until the two means are at least the margin apart (if
no γ reaches the margin, the one giving the largest separation is kept). ``scar_blood_margin=0``
turns the guard off and gives the authors' band rule alone.

Background, myocardium and other tissue (e.g. RV) are returned bit for bit as they came in.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from . import labels as L
from .errors import InputError

AUTHORS_BLOOD_MEAN = 56.47  # dataset-wide mean blood intensity of the authors' data (0–255 scale)


@dataclass(frozen=True)
class GammaConfig:
    """Gamma rules. Thresholds are mean intensities on the per-slice [0, 255] scale, ascending.

    ``scar_gammas[i]`` applies when the scar mean is below ``scar_thresholds[i]`` (and not below an
    earlier one); the last γ applies above every threshold. Same for blood above the dataset mean.
    """

    scar_thresholds: tuple[float, ...] = (60.46, 150.0)
    scar_gammas: tuple[float, ...] = (1.7, 1.6, 1.5)
    blood_min_mean: float = AUTHORS_BLOOD_MEAN  # used only when no dataset blood mean is given
    blood_thresholds: tuple[float, ...] = (86.03, 115.59, 130.95)
    blood_gammas: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6)
    scar_blood_margin: float = 10.0  # guard: enhanced scar vs corrected blood mean, 0–255 scale; 0 = off
    scar_gamma_step: float = 0.1
    scar_gamma_max: float = 2.5

    def __post_init__(self):
        # JSON gives lists; keep tuples so the config stays hashable and immutable.
        for f in ("scar_thresholds", "scar_gammas", "blood_thresholds", "blood_gammas"):
            object.__setattr__(self, f, tuple(float(v) for v in getattr(self, f)))
        problems = self.problems()
        if problems:
            raise InputError("invalid gamma configuration: " + "; ".join(problems))

    def problems(self) -> list[str]:
        out = []
        for name, thresholds, gammas in (
            ("scar", self.scar_thresholds, self.scar_gammas),
            ("blood", self.blood_thresholds, self.blood_gammas),
        ):
            if list(thresholds) != sorted(thresholds):
                out.append(f"{name}_thresholds must be ascending, got {list(thresholds)}")
            if len(gammas) != len(thresholds) + 1:
                out.append(f"{name}_gammas needs {len(thresholds) + 1} values (one more than {name}_thresholds), got {len(gammas)}")
        if not all(g > 1 for g in self.scar_gammas):
            out.append(f"scar_gammas must all be > 1 (they brighten scar), got {list(self.scar_gammas)}")
        if not all(0 < g <= 1 for g in self.blood_gammas):
            out.append(f"blood_gammas must be in (0, 1] (they darken blood), got {list(self.blood_gammas)}")
        if self.scar_blood_margin < 0 or self.scar_gamma_step <= 0:
            out.append("scar_blood_margin must be >= 0 and scar_gamma_step > 0")
        if self.scar_gamma_max < max(self.scar_gammas, default=1.0):
            out.append(f"scar_gamma_max ({self.scar_gamma_max}) is below the largest scar gamma")
        return out

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, path: "str | Path") -> "GammaConfig":
        """Read a JSON object holding any subset of the fields; the rest keep the authors' defaults."""
        path = Path(path)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("gamma configuration file not found", path) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read the gamma configuration: {e}", path) from e
        known = {f.name for f in fields(cls)}
        if not isinstance(spec, dict) or set(spec) - known:
            unknown = sorted(set(spec) - known) if isinstance(spec, dict) else spec
            raise InputError(f"unknown gamma settings {unknown}; known: {', '.join(sorted(known))}", path)
        try:
            return cls(**spec)
        except InputError as e:
            raise InputError(str(e), path) from e
        except (TypeError, ValueError) as e:
            raise InputError(f"invalid gamma configuration: {e}", path) from e


@dataclass
class SliceGammas:
    """What the rules chose for one slice (None: the tissue is absent or left unchanged)."""

    scar_mean: Optional[float] = None  # on the slice's [0, 255] scale, before correction
    scar_gamma: Optional[float] = None
    blood_mean: Optional[float] = None
    blood_gamma: Optional[float] = None
    enhanced_scar_mean: Optional[float] = None
    corrected_blood_mean: Optional[float] = None
    guard_raised_gamma: bool = False  # the scar/blood guard made the scar γ stronger than its band's
    notes: list[str] = field(default_factory=list)


def gamma_correct(values: np.ndarray, gamma: float) -> np.ndarray:
    """I_e = 255 · (I / 255) ** (1 / γ) for values in [0, 255] (float64 math)."""
    return 255.0 * np.power(np.clip(values, 0.0, 255.0) / 255.0, 1.0 / gamma)


def band_gamma(mean: float, thresholds: tuple[float, ...], gammas: tuple[float, ...]) -> float:
    """gammas[i] for the first threshold the mean is below; the last gamma above all of them."""
    return gammas[bisect.bisect_right(thresholds, mean)]


def choose_gammas(slice_0_255: np.ndarray, labels: np.ndarray, config: GammaConfig = GammaConfig(),
                  blood_mean: Optional[float] = None) -> SliceGammas:
    """Apply the rules of the module docstring to one (H, W) slice; nothing is modified."""
    image, labels = _check_slice(slice_0_255, labels)
    reference = config.blood_min_mean if blood_mean is None else float(blood_mean)
    out = SliceGammas()
    scar = image[labels == L.SCAR].astype(np.float64)
    blood = image[labels == L.BLOOD].astype(np.float64)

    corrected_blood = None
    if blood.size:
        out.blood_mean = float(blood.mean())
        if out.blood_mean > reference:
            out.blood_gamma = band_gamma(out.blood_mean, config.blood_thresholds, config.blood_gammas)
            corrected_blood = float(gamma_correct(blood, out.blood_gamma).mean())
        else:
            corrected_blood = out.blood_mean
        out.corrected_blood_mean = corrected_blood

    if scar.size:
        out.scar_mean = float(scar.mean())
        gamma = band_gamma(out.scar_mean, config.scar_thresholds, config.scar_gammas)
        enhanced = float(gamma_correct(scar, gamma).mean())
        if corrected_blood is not None and config.scar_blood_margin > 0 and abs(enhanced - corrected_blood) < config.scar_blood_margin:
            band = gamma
            gamma, enhanced = _guard(scar, gamma, corrected_blood, config)
            out.guard_raised_gamma = gamma != band
            if abs(enhanced - corrected_blood) < config.scar_blood_margin:
                out.notes.append(
                    f"scar stays within {config.scar_blood_margin} of blood even at gamma {gamma:g} "
                    f"(scar {enhanced:.1f}, blood {corrected_blood:.1f})"
                )
        out.scar_gamma, out.enhanced_scar_mean = gamma, enhanced
    return out


def apply_gammas(slice_0_255: np.ndarray, labels: np.ndarray, gammas: SliceGammas) -> np.ndarray:
    """(H, W) float32 target: scar and blood corrected as chosen, every other pixel copied bit for bit."""
    image, labels = _check_slice(slice_0_255, labels)
    target = image.astype(np.float32, copy=True)
    for tissue, gamma in ((L.SCAR, gammas.scar_gamma), (L.BLOOD, gammas.blood_gamma)):
        if gamma is not None:
            where = labels == tissue
            target[where] = gamma_correct(image[where].astype(np.float64), gamma).astype(np.float32)
    return target


def make_target(slice_0_255: np.ndarray, labels: np.ndarray, config: GammaConfig = GammaConfig(),
                blood_mean: Optional[float] = None) -> np.ndarray:
    """One slice (H, W) in [0, 255] + canonical labels (H, W) → target (H, W) float32 in [0, 255].

    ``blood_mean``: the dataset-wide mean blood intensity (``dataset_blood_mean``); None uses the
    authors' value ``config.blood_min_mean``.
    """
    return apply_gammas(slice_0_255, labels, choose_gammas(slice_0_255, labels, config, blood_mean))


def make_targets(slices: np.ndarray, labels: np.ndarray, config: GammaConfig = GammaConfig(),
                 blood_mean: Optional[float] = None) -> np.ndarray:
    """(N, H, W) slices in [0, 255] + (N, H, W) canonical labels → (N, H, W) float32 targets."""
    targets, _ = make_targets_with_gammas(slices, labels, config, blood_mean)
    return targets


def make_targets_with_gammas(slices: np.ndarray, labels: np.ndarray, config: GammaConfig = GammaConfig(),
                             blood_mean: Optional[float] = None) -> tuple[np.ndarray, list[SliceGammas]]:
    """``make_targets`` plus what was chosen for each slice (for reports and targets.json)."""
    slices, labels = np.asarray(slices), np.asarray(labels)
    if slices.ndim != 3 or slices.shape != labels.shape:
        raise InputError(f"expected (N, H, W) slices and labels of the same shape, got {slices.shape} and {labels.shape}")
    chosen = [choose_gammas(s, m, config, blood_mean) for s, m in zip(slices, labels)]
    targets = np.stack([apply_gammas(s, m, g) for s, m, g in zip(slices, labels, chosen)]) if len(chosen) else (
        np.zeros(slices.shape, np.float32))
    return targets, chosen


def slice_blood_means(slices: np.ndarray, labels: np.ndarray) -> list[float]:
    """Mean intensity of the blood pool of each (H, W) slice that has one."""
    slices, labels = np.asarray(slices), np.asarray(labels)
    means = []
    for image, lab in zip(slices.reshape(-1, *slices.shape[-2:]), labels.reshape(-1, *labels.shape[-2:])):
        blood = image[lab == L.BLOOD]
        if blood.size:
            means.append(float(blood.astype(np.float64).mean()))
    return means


def dataset_blood_mean(cases_or_slices: Iterable) -> float:
    """The dataset-wide mean blood intensity: the mean over all blood pools (one per slice) of their mean.

    Items are ``datasets.Case``-like objects (``.image``, ``.labels`` sitk volumes: each slice is
    scaled to [0, 255] with ``geometry.volume_to_slices``) or ``(slices, labels)`` array pairs already
    on that scale, (N, H, W) or (H, W). InputError when no item holds any blood label.
    """
    from .geometry import labels_to_slices, volume_to_slices  # numpy-only callers need not load it

    means: list[float] = []
    for item in cases_or_slices:
        if hasattr(item, "image") and hasattr(item, "labels"):
            if item.labels is None:
                raise InputError("case has no labels; the dataset blood mean needs the blood pool", getattr(item, "label_path", None) or getattr(item, "name", None))
            stack = volume_to_slices(item.image)
            means += slice_blood_means(stack.slices, labels_to_slices(item.labels, stack))
        else:
            slices, labels = item
            means += slice_blood_means(slices, labels)
    if not means:
        raise InputError("no blood pool (label 'blood') in the dataset: cannot compute the dataset blood mean")
    return float(np.mean(means))


def _guard(scar: np.ndarray, gamma: float, blood: float, config: GammaConfig) -> tuple[float, float]:
    """Raise the scar γ until the enhanced scar mean is ``margin`` away from blood; (γ, enhanced mean)."""
    best = (gamma, float(gamma_correct(scar, gamma).mean()))
    steps = int(np.floor((config.scar_gamma_max - gamma) / config.scar_gamma_step + 1e-9))
    for i in range(1, steps + 1):
        g = round(gamma + i * config.scar_gamma_step, 6)
        enhanced = float(gamma_correct(scar, g).mean())
        if abs(enhanced - blood) >= config.scar_blood_margin:
            return g, enhanced
        if abs(enhanced - blood) > abs(best[1] - blood):
            best = (g, enhanced)
    return best


def _check_slice(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image, labels = np.asarray(image), np.asarray(labels)
    if image.ndim != 2 or image.shape != labels.shape:
        raise InputError(f"expected an (H, W) slice and labels of the same shape, got {image.shape} and {labels.shape}")
    if image.size and (not np.isfinite(image).all() or image.min() < -1e-3 or image.max() > 255.0 + 1e-3):
        raise InputError(
            f"slice must be scaled to [0, 255] first (geometry.volume_to_slices); got {image.min():g}..{image.max():g}"
        )
    return image, labels


# ----------------------------------------------------------------------------------------------
# A whole dataset → target volumes on disk (`scarenhance targets`, and the training pipeline)

TARGETS_JSON = "targets.json"


def target_path(out_dir: "str | Path", case_name: str) -> Path:
    """Where the target volume of a case is written: ``<out_dir>/<case>.nii.gz``."""
    return Path(out_dir) / f"{case_name}.nii.gz"


def write_dataset_targets(data_dir: "str | Path", out_dir: "str | Path", config: GammaConfig = GammaConfig(),
                          layout: str = "auto", overwrite: bool = False, progress=None) -> dict:
    """Make the target volume of every case in ``data_dir`` and a ``targets.json`` report in ``out_dir``.

    Two passes over the dataset: the first computes the dataset blood mean, the second writes each
    case's target (`target_volume`: the input's exact geometry and intensity scale) and records the γ chosen
    for each slice (slices in ``geometry.volume_to_slices`` order: along the axis of largest spacing).
    Existing outputs are kept (InputError naming them) unless ``overwrite``. Returns the report.
    """
    from .datasets import list_cases, load_case
    from .geometry import labels_to_slices, volume_to_slices
    from .io import write_image
    from .progress import no_progress

    progress = progress or no_progress
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    names = list_cases(data_dir, layout)
    report_path = out_dir / TARGETS_JSON
    if not overwrite:
        existing = [p for p in [report_path, *(target_path(out_dir, n) for n in names)] if p.exists()]
        if existing:
            shown = ", ".join(p.name for p in existing[:5]) + (" ..." if len(existing) > 5 else "")
            raise InputError(f"outputs already exist ({shown}); choose an empty folder or allow overwriting", out_dir)

    def cases(start: float, end: float):
        for i, name in enumerate(names):
            progress(start + (end - start) * i / len(names), f"{name}")
            yield load_case(data_dir, name, layout)

    blood_mean = dataset_blood_mean(cases(0.0, 0.3))
    report = {
        "method": "tissue-specific gamma correction (Hasny et al., MICCAI 2024, section 2.1)",
        "data": str(data_dir),
        "dataset_blood_mean": blood_mean,
        "config": config.to_dict(),
        "warnings": config_warnings(config, blood_mean),
        "cases": [],
    }
    for case in cases(0.3, 1.0):
        stack = volume_to_slices(case.image)
        labels = labels_to_slices(case.labels, stack)
        targets, chosen = make_targets_with_gammas(stack.slices, labels, config, blood_mean)
        path = write_image(target_volume(stack, labels, targets, chosen), target_path(out_dir, case.name), overwrite=overwrite)
        report["cases"].append({
            "name": case.name,
            "image": str(case.image_path),
            "labels": str(case.label_path),
            "target": path.name,
            "slices": [{"index": i, **_rounded(asdict(g))} for i, g in enumerate(chosen)],
        })
    _write_json_atomic(report, report_path)
    progress(1.0, f"{len(names)} target volumes in {out_dir}")
    return report


def target_volume(stack, labels: np.ndarray, targets: np.ndarray, chosen: list[SliceGammas]):
    """The (N, H, W) targets of `stack` as a volume in the input's geometry and intensity scale.

    Every voxel the rules left alone is the input's own value, bit for bit: going to [0, 255] and back
    is not exact in floating point (it moved such voxels by up to 1e-4). The pixel type is float32, or
    float64 when float32 cannot hold every input value exactly (int32, float64 …).
    """
    import SimpleITK as sitk

    from .geometry import mask_to_volume, slices_to_volume

    changed = np.zeros(labels.shape, bool)
    for i, g in enumerate(chosen):
        if g.scar_gamma is not None:
            changed[i] |= labels[i] == L.SCAR
        if g.blood_gamma is not None:
            changed[i] |= labels[i] == L.BLOOD
    original = sitk.GetArrayFromImage(stack.reference)
    dtype = np.float32 if np.can_cast(original.dtype, np.float32, "safe") else np.float64
    corrected = sitk.GetArrayFromImage(slices_to_volume(stack, targets, dtype=dtype))
    where = sitk.GetArrayFromImage(mask_to_volume(stack, changed)).astype(bool)
    volume = sitk.GetImageFromArray(np.where(where, corrected, original.astype(dtype)))
    volume.CopyInformation(stack.reference)
    return volume


def config_warnings(config: GammaConfig, blood_mean: float) -> list[str]:
    """Rules that cannot act as intended with this dataset's blood mean (the thresholds are absolute)."""
    skipped = [t for t, g in zip(config.blood_thresholds, config.blood_gammas) if t <= blood_mean]
    if not skipped:
        return []
    first = config.blood_gammas[len(skipped)]
    return [
        f"the dataset blood mean {blood_mean:.2f} is above the blood thresholds {skipped}: every blood pool "
        f"above the mean gets gamma {first:g} or stronger, never {', '.join(f'{g:g}' for g in config.blood_gammas[:len(skipped)])}. "
        "The authors' thresholds fit their data (mean 56.47); consider blood_thresholds for yours."
    ]


def _rounded(values: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def _write_json_atomic(data: dict, path: Path) -> None:
    from .bundle import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(data, indent=1).encode("utf-8"))
