"""How the scanner turns tissue into an LGE image: inversion time, coil sensitivity, resolution, noise.

The chain per case: tissue signals at the chosen TI → through-plane averaging (done by the caller over
sub-planes) → smooth tissue texture → coil bias field → respiratory ghosts (some cases) → in-plane
point-spread blur → complex Gaussian noise and magnitude (Rician) → scanner scale → int16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .tissues import BLOOD, MYOCARDIUM, SCAR, TissueProperties, inversion_recovery, null_time

# relative amplitude of smooth intensity texture per tissue code (air, lung, fat, muscle, liver,
# marrow, blood, myocardium, scar, no_reflow): blood pools show slow-flow inhomogeneity, lungs are patchy,
# and the nulling of myocardium varies across the wall (coil, B1, inflow), so its texture is strong
TEXTURE = np.array([0.0, 0.35, 0.06, 0.07, 0.05, 0.10, 0.05, 0.20, 0.12, 0.15], dtype=np.float32)


@dataclass
class Acquisition:
    """Sequence and scanner settings of one case."""

    tr: float  # time between inversions, ms (two RR intervals)
    ti: float  # inversion time, ms
    ti_null: float  # TI that would null remote myocardium, ms
    ti_quality: str  # "good": near the myocardial null; "poor": mistimed, low scar/myocardium contrast
    psf_mm: float  # in-plane blur (Gaussian σ, mm): acquired resolution coarser than the pixel grid
    snr: float  # reference (blood) signal / noise σ
    scale: float  # scanner units of the reference (blood) signal
    bias_strength: float  # peak-to-peak log-amplitude of the coil field
    bias_direction: float  # where the coil sits (image-plane angle, radians)
    texture_seed: int
    ghost: float = 0.0  # amplitude of respiratory ghosts (fraction of the image), 0 in most cases
    ghost_axis: int = 0  # phase-encoding axis of the (H, W) plane: 0 rows, 1 columns
    ghost_shift: float = 0.25  # ghost displacement, fraction of the FOV along that axis

    def as_dict(self) -> dict:
        return {"tr_ms": round(self.tr, 1), "ti_ms": round(self.ti, 1), "ti_null_ms": round(self.ti_null, 1),
                "ti_quality": self.ti_quality, "psf_mm": round(self.psf_mm, 3), "snr_blood": round(self.snr, 1),
                "scale": round(self.scale, 1), "bias_strength": round(self.bias_strength, 3),
                "ghost": round(self.ghost, 3)}


TI_QUALITIES = ("good", "poor")


def sample_acquisition(rng: np.random.Generator, tissues: TissueProperties, ti_quality: "str | None" = None) -> Acquisition:
    """Draw TR, TI and scanner settings. About a quarter of cases get a mistimed TI.

    The TI is solved for a drawn contrast rather than drawn itself, because contrast is steep in TI
    near the null:
    - good: remote myocardium at 18–42 % of the blood signal, mostly with TI a little long (the usual
      advice: a short TI leaves myocardium inverted), sometimes a little short;
    - poor, too long: myocardium at 55–80 % of blood, everything recovered, contrast washed out;
    - poor, too short: between the scar's null and the myocardium's, scar within 0.7–1.3× the
      (inverted, magnitude-bright) myocardium: scar nearly invisible.
    """
    rr = rng.uniform(700.0, 1150.0)
    tr = 2.0 * rr
    ti_null = null_time(float(tissues.t1[MYOCARDIUM]), tr)
    poor_draw = rng.random() < 0.25
    if ti_quality is None:
        ti_quality = "poor" if poor_draw else "good"
    if ti_quality not in TI_QUALITIES:
        raise ValueError(f"unknown ti_quality {ti_quality!r}; choose one of {', '.join(TI_QUALITIES)}")
    branch, target = rng.random(), rng.uniform(0.0, 1.0)

    grid = np.linspace(0.3 * ti_null, 2.5 * ti_null, 4000)
    sig = inversion_recovery(tissues.pd[:, None], tissues.t1[:, None], grid[None, :], tr)  # (tissues, TIs)
    myo_blood = sig[MYOCARDIUM] / np.maximum(sig[BLOOD], 1e-9)
    long = grid > ti_null
    if ti_quality == "good":
        side = long if branch < 0.7 else ~long
        ratio = 0.18 + 0.24 * target
        ti = _closest(grid, myo_blood, ratio, side)
    elif branch < 0.5:  # too long
        ti = _closest(grid, myo_blood, 0.55 + 0.25 * target, long)
    else:  # too short, between the scar's null and the myocardium's
        scar_myo = sig[SCAR] / np.maximum(sig[MYOCARDIUM], 1e-9)
        between = (grid < ti_null) & (grid > null_time(float(tissues.t1[SCAR]), tr))
        ti = _closest(grid, scar_myo, 0.7 + 0.6 * target, between)
    return Acquisition(
        tr=tr, ti=ti, ti_null=ti_null, ti_quality=ti_quality,
        psf_mm=rng.uniform(0.5, 1.0), snr=rng.uniform(10.0, 35.0), scale=rng.uniform(150.0, 900.0),
        bias_strength=rng.uniform(0.2, 0.8), bias_direction=rng.uniform(-np.pi, np.pi),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
        ghost=rng.uniform(0.02, 0.07) if rng.random() < 0.3 else 0.0,
        ghost_axis=int(rng.integers(0, 2)), ghost_shift=rng.uniform(0.15, 0.35),
    )


def _closest(grid: np.ndarray, values: np.ndarray, target: float, where: np.ndarray) -> float:
    """The grid TI (ms) among `where` whose value is closest to target."""
    cost = np.where(where, np.abs(values - target), np.inf)
    return float(grid[int(np.argmin(cost))])


def tissue_signals(tissues: TissueProperties, acq: Acquisition) -> np.ndarray:
    """Signal of each tissue code (shape (10,), float32) in units of the reference signal: the blood
    signal, or half the brightest tissue's when a very short TI nulls the blood."""
    s = inversion_recovery(tissues.pd, tissues.t1, acq.ti, acq.tr)
    return (s / max(s[BLOOD], 0.5 * s.max())).astype(np.float32)


def texture_field(shape: tuple[int, int, int], spacing_mm: float, seed: int) -> np.ndarray:
    """Smooth zero-mean random field (Z, H, W) float32 with unit-ish std and ~8 mm correlation length:
    white noise on an 8 mm grid, bilinearly interpolated (two small matrix products per slice)."""
    rng = np.random.default_rng(seed)
    z, h, w = shape
    cell = 8.0 / spacing_mm  # pixels per coarse cell
    ny, nx = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    coarse = rng.standard_normal((z, ny, nx)).astype(np.float32)
    ry, rx = _linear_interpolation(h, ny, cell), _linear_interpolation(w, nx, cell)
    return np.einsum("yc,zcd,xd->zyx", ry, coarse, rx, optimize=True).astype(np.float32)


def _linear_interpolation(n: int, n_coarse: int, cell: float) -> np.ndarray:
    """(n, n_coarse) matrix interpolating a coarse grid with `cell` fine pixels per node, linearly."""
    pos = np.arange(n) / cell + 0.5
    lo = np.clip(np.floor(pos).astype(int), 0, n_coarse - 2)
    frac = (pos - lo).astype(np.float32)
    m = np.zeros((n, n_coarse), dtype=np.float32)
    m[np.arange(n), lo] = 1.0 - frac
    m[np.arange(n), lo + 1] = frac
    return m


def bias_field(shape: tuple[int, int], spacing_mm: float, acq: Acquisition) -> np.ndarray:
    """Multiplicative receive-coil sensitivity (H, W) float32, mean ≈ 1: brighter on the coil's side,
    falling off smoothly across the chest."""
    h, w = shape
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) * spacing_mm / 200.0
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) * spacing_mm / 200.0
    along = np.cos(acq.bias_direction) * x[None, :] + np.sin(acq.bias_direction) * y[:, None]
    across = -np.sin(acq.bias_direction) * x[None, :] + np.cos(acq.bias_direction) * y[:, None]
    log_field = acq.bias_strength * (0.5 * along - 0.25 * across * across)
    field = np.exp(log_field)
    return (field / field.mean()).astype(np.float32)


def acquire(signal: np.ndarray, spacing_mm: float, acq: Acquisition, rng: np.random.Generator) -> np.ndarray:
    """Apply coil field, in-plane blur, Rician noise and scale to a noiseless signal volume.

    signal: (Z, H, W) float32 in units of the blood signal. Returns (Z, H, W) int16 scanner values.
    """
    field = bias_field(signal.shape[1:], spacing_mm, acq)
    img = signal * field[None]
    if acq.ghost > 0:  # breathing between segments replicates bright structures along phase encoding
        axis = 1 + acq.ghost_axis
        shift = int(round(acq.ghost_shift * img.shape[axis]))
        img = img + 0.5 * acq.ghost * (np.roll(img, shift, axis=axis) + np.roll(img, -shift, axis=axis))
    sigma_px = acq.psf_mm / spacing_mm
    img = ndimage.gaussian_filter(img, sigma=(0.0, sigma_px, sigma_px), truncate=3.0)
    noise = 1.0 / acq.snr
    real = img + noise * rng.standard_normal(img.shape, dtype=np.float32)
    imag = noise * rng.standard_normal(img.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imag * imag)
    return np.clip(np.rint(magnitude * acq.scale), 0, 32767).astype(np.int16)

