"""One synthetic LGE case: anatomy + scar + tissue signals + acquisition → an int16 volume and its
EMIDEC label volume, deterministic for a seed.

Each ingredient draws from its own random stream (spawned from the seed), so overriding one of them
(say the scar pattern) leaves the others — anatomy, geometry, scanner — unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from . import anatomy as A
from .acquisition import TEXTURE, acquire, sample_acquisition, texture_field, tissue_signals
from .scar import ScarSpec, sample_pattern, sample_scar
from .tissues import MYOCARDIUM, NO_REFLOW, SCAR, sample_tissues

# EMIDEC label values written to the Contours volume (RV and other tissues stay 0, as in EMIDEC)
BACKGROUND, CAVITY, MYO, INFARCT, NO_REFLOW_LABEL = 0, 1, 2, 3, 4

OVERRIDES = ("n_slices", "spacing", "slice_spacing", "size", "oblique", "scar_pattern", "ti_quality", "hcm")


@dataclass
class PhantomCase:
    """A synthetic case. image: int16, x/y in-plane, z across slices; labels: uint8 EMIDEC labels
    (0 background, 1 LV cavity, 2 myocardium, 3 infarct, 4 no-reflow) on the same grid; info: the
    parameters that made it (JSON-serialisable)."""

    name: str
    image: sitk.Image
    labels: sitk.Image
    info: dict


@dataclass
class Geometry:
    """Slice grid. Image-plane mm have x to the right (columns) and y down (rows), origin at the centre."""

    size: tuple  # (W, H) pixels
    spacing: float  # in-plane pixel size, mm
    slice_spacing: float  # mm between slice centres
    slice_thickness: float  # mm, ≤ slice_spacing
    z: np.ndarray  # (N,) position of each slice along the LV axis, mm from the base
    centre: tuple  # LV centre at the base, mm from the image centre (x, y)
    drift: tuple  # LV centre shift from base to apex, mm (x, y)
    jitter: np.ndarray  # (N, 2) per-slice LV centre shift (breath-hold mismatch), mm (x, y)
    view_angle: float  # in-plane rotation of the anatomy, radians
    mirrored: bool  # RV on the right instead of the left
    direction: tuple  # 9 direction cosines (row-major 3×3)
    origin: tuple


def generate_case(seed: int, **overrides) -> PhantomCase:
    """Make one synthetic short-axis LGE case, the same for the same seed and overrides.

    overrides (all optional): n_slices (2–16), spacing (in-plane mm), slice_spacing (mm), size ((W, H) px),
    oblique (bool), scar_pattern (one of scar.PATTERNS), ti_quality ("good" | "poor"), hcm (bool).
    """
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise TypeError(f"generate_case got unknown overrides {unknown}; allowed: {', '.join(OVERRIDES)}")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(6)]
    r_scar, r_anat, r_geom, r_tissue, r_acq, r_noise = streams

    pattern = overrides.get("scar_pattern") or sample_pattern(r_scar)
    scar = sample_scar(r_scar, pattern)
    hcm = overrides.get("hcm")
    if hcm is None:  # HCM goes with patchy insertion-point fibrosis
        hcm = r_anat.random() < (0.6 if pattern == "rv_insertion" else 0.12)
    anat = A.sample_anatomy(r_anat, hcm=bool(hcm))
    geom = sample_geometry(r_geom, anat, **{k: overrides[k] for k in ("n_slices", "spacing", "slice_spacing", "size", "oblique") if k in overrides})
    _cover_a_slice(scar, geom.z / anat.length)
    tissues = sample_tissues(r_tissue)
    acq = sample_acquisition(r_acq, tissues, overrides.get("ti_quality"))
    signals = tissue_signals(tissues, acq)

    W, H = geom.size
    n = len(geom.z)
    x = (np.arange(W, dtype=np.float32) - (W - 1) / 2) * geom.spacing
    y = (np.arange(H, dtype=np.float32) - (H - 1) / 2) * geom.spacing
    texture = texture_field((n, H, W), geom.spacing, acq.texture_seed)
    signal = np.zeros((n, H, W), dtype=np.float32)
    labels = np.zeros((n, H, W), dtype=np.uint8)
    # through-plane partial volume: the heart (where it matters) is averaged over three planes
    # spread across the slice thickness; the rest of the chest changes too slowly to bother
    offsets = (0.0, -geom.slice_thickness / 3.0, geom.slice_thickness / 3.0)
    z_mid = float(geom.z[n // 2])
    body = anat.render_body(*_anatomical_grid(geom, anat, x, y, z_mid))
    for k, zk in enumerate(geom.z):
        X, Y = _anatomical_grid(geom, anat, x, y, zk)
        chest = anat.render_chest(body, X, Y, zk)
        sig = signals[chest]
        sig *= 1.0 + TEXTURE[chest] * texture[k]
        rows, cols = _heart_box(geom, anat, zk, (H, W))
        Xc, Yc, tex = X[rows, cols], Y[rows, cols], texture[k][rows, cols]
        heart_sig = np.zeros(Xc.shape, dtype=np.float32)
        for off in offsets:
            Xo, Yo = (Xc, Yc) if off == 0.0 else _anatomical_grid(geom, anat, x[cols], y[rows], zk + off)
            tissue = chest[rows, cols].copy()
            plane = anat.render_heart(tissue, Xo, Yo, zk + off)
            w_scar, w_nr = scar.weights(plane.psi, plane.depth, plane.radius, plane.wall_mm, (zk + off) / anat.length,
                                        anat.rv_insertions(zk + off))
            sub = signals[tissue]
            sub += w_scar * (signals[SCAR] - signals[MYOCARDIUM]) + w_nr * (signals[NO_REFLOW] - signals[SCAR])
            sub *= 1.0 + TEXTURE[tissue] * tex
            heart_sig += sub / len(offsets)
            if off == 0.0:  # labels are drawn on the slice's centre plane, like manual contours
                wall = plane.lv == A.WALL
                lab = labels[k][rows, cols]
                lab[wall] = MYO
                lab[plane.lv == A.CAVITY] = CAVITY
                lab[wall & (w_scar >= 0.5)] = INFARCT
                lab[wall & (w_nr >= 0.5)] = NO_REFLOW_LABEL
        sig[rows, cols] = heart_sig
        signal[k] = sig
    pixels = acquire(signal, geom.spacing, acq, r_noise)

    image = _to_sitk(pixels, geom)
    label_image = _to_sitk(labels, geom)
    name = f"Phantom_{seed}"
    info = _describe(name, seed, geom, anat, scar, tissues, acq, pixels, labels, image)
    return PhantomCase(name=name, image=image, labels=label_image, info=info)


def sample_geometry(rng: np.random.Generator, anat: A.Anatomy, n_slices: "int | None" = None, spacing: "float | None" = None,
                    slice_spacing: "float | None" = None, size: "tuple | None" = None, oblique: "bool | None" = None) -> Geometry:
    """Draw a scanner-like slice grid: FOV 260–420 mm along the longer image axis, 160–512 px,
    in-plane 0.7–2 mm, 5–12 mm between slices, 2–16 slices, LV centre within ±12 % of the FOV.
    Overridden values are taken as given (tests use small matrices); a size given without a spacing
    gets the spacing that brings its FOV closest to 260–420 mm."""
    # in-plane resolution: MyoPS-like fine grids, EMIDEC-like ~1.4 mm, or anything in between
    kind = rng.random()
    sp = rng.uniform(0.7, 0.8) if kind < 0.3 else rng.uniform(1.25, 1.6) if kind < 0.7 else rng.uniform(0.7, 2.0)
    if size is not None and spacing is None:  # a given matrix keeps a realistic FOV as far as 0.7–2 mm allow
        sp = float(np.clip(rng.uniform(260.0, 420.0) / max(size), 0.7, 2.0))
    sp = float(spacing if spacing is not None else sp)
    lo, hi = max(160, int(np.ceil(260.0 / sp))), min(512, int(np.floor(420.0 / sp)))
    long_side = int(rng.integers(lo, hi + 1)) if hi >= lo else int(np.clip(round(340.0 / sp), 160, 512))
    if rng.random() < 0.5 and lo <= 16 * round(long_side / 16) <= hi:
        long_side = 16 * round(long_side / 16)  # scanners like multiples of 16
    short_side = long_side
    if rng.random() < 0.3:  # rectangular FOV: fewer phase-encoding lines
        short_side = max(160, int(round(long_side * rng.uniform(0.72, 0.9))))
    W, H = (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)
    if size is not None:
        W, H = int(size[0]), int(size[1])

    sz = rng.uniform(8.0, 12.0) if rng.random() < 0.6 else rng.uniform(5.0, 8.0)
    sz = float(slice_spacing if slice_spacing is not None else sz)
    thickness = sz * (rng.uniform(0.8, 1.0) if rng.random() < 0.5 else 1.0)  # sometimes a gap
    heart_len = anat.length + anat.apex_wall
    sparse = rng.random() < 0.25
    if n_slices is None:
        if sparse:  # a few slices spread over the ventricle, as in MyoPS
            n_slices = int(rng.integers(2, 7))
        else:  # a full stack from the base towards the apex
            n_slices = int(np.clip(round(heart_len * rng.uniform(0.8, 1.0) / sz) + 1, 2, 16))
    n_slices = int(n_slices)
    if not 1 <= n_slices <= 64:
        raise ValueError(f"n_slices must be between 1 and 64, got {n_slices}")
    span = (n_slices - 1) * sz
    z0 = rng.uniform(-2.0, 6.0) if span >= 0.6 * heart_len else rng.uniform(0.0, max(0.0, 0.85 * heart_len - span))
    z = z0 + sz * np.arange(n_slices)

    fov = np.array([W, H], dtype=float) * sp
    limit = np.maximum(0.12 * fov - 8.0, 0.0)  # keep the drifting, jittering centre inside ±12 % as well
    centre = tuple(float(c) for c in rng.uniform(-limit, limit))
    drift = tuple(float(d) for d in rng.uniform(-5.0, 5.0, 2))
    view_angle = float(rng.uniform(-0.5, 0.5))
    mirrored = bool(rng.random() < 0.15)

    orient = rng.random()
    if oblique is None:
        oblique = orient < 0.4
    if oblique:
        q = rng.standard_normal(4)
        direction = _rotation(q / np.linalg.norm(q))
    else:
        direction = np.diag([-1.0, -1.0, 1.0]) if orient > 0.8 else np.eye(3)
    origin = rng.uniform(-250.0, 250.0, 3) if rng.random() < 0.9 else np.zeros(3)
    # each slice is its own breath-hold: the heart lands a little differently every time
    jitter = rng.uniform(-2.0, 2.0, (n_slices, 2)) * (rng.random() < 0.7)
    return Geometry(size=(W, H), spacing=sp, slice_spacing=sz, slice_thickness=float(thickness), z=z, centre=centre,
                    drift=drift, jitter=jitter, view_angle=view_angle, mirrored=mirrored,
                    direction=tuple(float(v) for v in direction.ravel()), origin=tuple(float(v) for v in origin))


def lv_centre_mm(geom: Geometry, anat: A.Anatomy, z: float) -> tuple[float, float]:
    """LV centre in plane z, mm from the image centre (x right, y down): base position, drift along
    the long axis, and the breath-hold jitter of the slice that plane z belongs to."""
    f = z / anat.length
    k = int(np.argmin(np.abs(geom.z - z)))
    return (geom.centre[0] + geom.drift[0] * f + geom.jitter[k, 0],
            geom.centre[1] + geom.drift[1] * f + geom.jitter[k, 1])


def _cover_a_slice(scar: ScarSpec, s: np.ndarray) -> None:
    """Widen the scar's z range (fractions of the LV length) to reach the nearest slice through the
    cavity when it falls between slices, so a case drawn with scar has scar in its image."""
    inside = s[(s >= 0.0) & (s < 0.95)]
    lo, hi = scar.z_range
    if scar.pattern == "none" or len(inside) == 0 or ((inside >= lo) & (inside <= hi)).any():
        return
    nearest = float(inside[np.argmin(np.minimum(np.abs(inside - lo), np.abs(inside - hi)))])
    scar.z_range = (min(lo, nearest - 0.05), max(hi, nearest + 0.05))


def _heart_box(geom: Geometry, anat: A.Anatomy, z: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Row and column slices of the pixels within heart_extent() (+ through-plane drift) of the LV
    centre in plane z: the only pixels the heart can touch."""
    cx, cy = lv_centre_mm(geom, anat, z)
    H, W = shape
    half = (anat.heart_extent() + 4.0) / geom.spacing
    ci, cj = (H - 1) / 2 + cy / geom.spacing, (W - 1) / 2 + cx / geom.spacing
    rows = slice(max(int(ci - half), 0), min(int(np.ceil(ci + half)) + 1, H))
    cols = slice(max(int(cj - half), 0), min(int(np.ceil(cj + half)) + 1, W))
    return rows, cols


def _anatomical_grid(geom: Geometry, anat: A.Anatomy, x: np.ndarray, y: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Anatomical (X, Y) mm of every pixel (H, W) of plane z: shift to the LV centre, flip y up, rotate."""
    cx, cy = lv_centre_mm(geom, anat, z)
    u = (x - cx)[None, :]
    v = -(y - cy)[:, None]
    c, s = np.cos(geom.view_angle), np.sin(geom.view_angle)
    X = u * c + v * s
    Y = -u * s + v * c
    return (-X if geom.mirrored else X), Y


def _to_sitk(array: np.ndarray, geom: Geometry) -> sitk.Image:
    img = sitk.GetImageFromArray(array)  # (Z, H, W) → size (W, H, Z)
    img.SetSpacing((geom.spacing, geom.spacing, geom.slice_spacing))
    img.SetDirection(geom.direction)
    img.SetOrigin(geom.origin)
    return img


def _rotation(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _describe(name, seed, geom, anat, scar, tissues, acq, pixels, labels, image) -> dict:
    """JSON-serialisable summary: what was drawn and what the image measures."""
    myo = labels == MYO
    wall = np.isin(labels, (MYO, INFARCT, NO_REFLOW_LABEL))
    scar_px = np.isin(labels, (INFARCT, NO_REFLOW_LABEL))
    mid = len(geom.z) // 2
    cx, cy = lv_centre_mm(geom, anat, float(geom.z[mid]))
    W, H = geom.size
    index = ((W - 1) / 2 + cx / geom.spacing, (H - 1) / 2 + cy / geom.spacing, float(mid))

    def mean(mask):
        return float(pixels[mask].mean()) if mask.any() else None

    m_myo, m_blood, m_scar = mean(myo), mean(labels == CAVITY), mean(labels == INFARCT)
    scar_info = scar.as_dict()
    scar_info["fraction_of_myocardium"] = round(float(scar_px.sum() / max(wall.sum(), 1)), 4)
    scar_info["slices"] = [int(k) for k in np.flatnonzero(scar_px.any(axis=(1, 2)))]
    return {
        "name": name, "seed": int(seed),
        "size": [int(W), int(H), len(geom.z)], "spacing": [geom.spacing, geom.spacing, geom.slice_spacing],
        "slice_thickness": geom.slice_thickness, "fov_mm": [W * geom.spacing, H * geom.spacing],
        "origin": list(geom.origin), "direction": list(geom.direction),
        "slice_z_mm": [round(float(v), 2) for v in geom.z],
        "heart_centre_mm": [cx, cy], "heart_centre_index": list(index),
        "heart_centre_physical": list(image.TransformContinuousIndexToPhysicalPoint(index)),
        "view_angle_deg": round(float(np.degrees(geom.view_angle)), 1), "mirrored": geom.mirrored,
        "anatomy": {
            "cavity_diameter_mm": round(2 * anat.cavity_radius, 1), "wall_mm": round(anat.wall, 1),
            "septum_mm": round(float(anat.wall_thickness(np.array(anat.hcm_centre), 0.0)), 1),
            "hcm": anat.hcm_septum > 0, "lv_length_mm": round(anat.length, 1),
        },
        "scar": scar_info,
        "tissues": tissues.as_dict(),
        "acquisition": acq.as_dict(),
        "measured": {
            "blood_mean": m_blood, "myocardium_mean": m_myo, "scar_mean": m_scar,
            "blood_myo_ratio": None if not (m_blood and m_myo) else m_blood / m_myo,
            "scar_myo_ratio": None if not (m_scar and m_myo) else m_scar / m_myo,
        },
    }
