"""Random 2D short-axis chest anatomy, rasterised as a label map of structures.py ids.

Every structure is an analytic shape (star-shaped outlines with random harmonics, rings, sectors) in
an anatomical frame in millimetres centred on the LV: +u towards the LV lateral wall, the RV on the
−u side, +v anterior. The image grid's coordinates are mapped into that frame by a random pose
(position, any in-plane rotation, mirror, heart size) and a smooth random displacement field, then
each shape is evaluated on the warped coordinates. Deforming the coordinates before rasterising keeps
the label map exact (no nearest-neighbour resampling of labels) and the image is rendered from that
map afterwards, so image and labels cannot drift apart.

    anatomy = sample_anatomy(rng, ranges)        # parameters only (JSON-friendly)
    labels = render(anatomy, grid)               # (H, W) uint8 structure ids
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import structures as S


@dataclass
class Grid:
    """The output pixel grid: shape (H, W), pixel size in mm, and the pose of the anatomy on it."""

    shape: tuple[int, int]
    spacing_mm: float
    centre_mm: tuple[float, float]  # LV centre, mm from the grid's centre (x right, y down)
    angle: float  # rotation of the anatomical frame, radians
    mirrored: bool
    warp_mm: float  # amplitude of the smooth displacement field
    warp_scale_mm: float  # its correlation length
    warp_seed: int


@dataclass
class Anatomy:
    """Shape parameters of one slice, in mm (see the module docstring for the frame)."""

    level: float  # 0 base … 1 apex; > 1 below the apex (no LV), < 0 above the base (atria only)
    lv_radius: float  # epicardial radius of the LV at this level
    wall: float  # mean wall thickness
    lv_ellipticity: float
    lv_axis: float
    lv_harmonics: np.ndarray  # (k, 2): amplitude (fraction), phase
    wall_harmonics: np.ndarray
    papillary: list  # [(ψ, radius)]
    trabeculae: list  # [(ψ, radius)]
    scar: dict  # pattern, centre ψ, half width, extent …
    rv: dict
    fat: dict
    great_vessels: dict  # which basal structures are present and where
    body: dict
    abdomen: dict  # liver / stomach / spleen presence
    effusion: float  # mm of pericardial fluid (0: none)
    extras: dict = field(default_factory=dict)


def sample_anatomy(rng: np.random.Generator, heart_mm: tuple[float, float], wall_mm: tuple[float, float],
                   level_range: tuple[float, float] = (-0.08, 1.08), scar_probability: float = 0.7) -> Anatomy:
    """Random anatomy; heart_mm: range of the LV's outer diameter at mid-ventricle, wall_mm: wall thickness."""
    def U(lo, hi):
        return float(rng.uniform(lo, hi))

    level = U(*level_range)
    diameter = U(*heart_mm)
    # the LV narrows towards the apex (truncated ellipsoid), as in a stack of short-axis slices
    taper = np.sqrt(max(0.0, 1.0 - 0.8 * max(0.0, level) ** 2))
    lv_radius = 0.5 * diameter * max(0.25, taper)
    wall = float(rng.uniform(*wall_mm))
    k = 4
    lv_h = np.stack([rng.uniform(0, 0.06, k) / np.arange(1, k + 1), rng.uniform(0, 2 * np.pi, k)], axis=1)
    wall_h = np.stack([rng.uniform(0, 0.35, k) / np.arange(1, k + 1), rng.uniform(0, 2 * np.pi, k)], axis=1)
    papillary = [(float(p + rng.normal(0, 0.3)), U(1.5, 6.0)) for p in (2.3, -2.3)] if rng.random() < 0.85 else []
    trabeculae = [(U(-np.pi, np.pi), U(0.8, 2.5)) for _ in range(int(rng.integers(0, 12)))]

    pattern = "none"
    if rng.random() < scar_probability:
        pattern = str(rng.choice(["subendocardial", "transmural", "midwall", "epicardial", "patchy"], p=[0.3, 0.3, 0.15, 0.1, 0.15]))
    scar = {"pattern": pattern, "centre": U(-np.pi, np.pi), "half_width": U(0.25, 1.6),
            "extent": U(0.2, 0.6) if pattern in ("subendocardial", "epicardial") else U(0.7, 1.05),
            "band": U(0.1, 0.25), "edge_noise": U(0.0, 0.2), "no_reflow": bool(rng.random() < 0.25),
            "blobs": [(U(-np.pi, np.pi), U(0.1, 0.9), U(1.5, 5.0)) for _ in range(int(rng.integers(2, 7)))]}

    # every draw is made whatever the level, so that one seed at several levels gives one coherent stack
    rv = {"present": (rng.random() < 0.95) and level < 0.95, "angle": float(np.pi + rng.normal(0.15, 0.3)),
          "depth": U(6, 30) * max(0.3, 1 - 0.6 * max(level, 0)), "width": U(1.0, 1.8), "wall": U(1.5, 5.0),
          "gap": U(0.0, 3.0)}
    fat = {"epicardial": U(0.0, 6.0), "coverage": U(0.2, 1.0), "start": U(-np.pi, np.pi),
           "groove": U(0.0, 12.0), "pericardial": U(0.0, 15.0), "pericardial_angle": U(-np.pi, np.pi)}
    basal = level < 0.15
    great = {"left_atrium": (rng.random() < 0.5) and basal, "right_atrium": (rng.random() < 0.4) and basal,
             "aortic_root": (rng.random() < 0.4) and basal, "pulmonary_artery": (rng.random() < 0.4) and basal,
             "la_angle": float(-np.pi / 2 + rng.normal(0, 0.5)), "ra_angle": float(-2.4 + rng.normal(0, 0.4)),
             "ao_angle": float(2.6 + rng.normal(0, 0.4)), "pa_angle": float(2.0 + rng.normal(0, 0.4)),
             "sizes": [U(10, 25), U(10, 22), U(8, 15), U(8, 15)]}
    body = {"offset": (U(-70, 0), U(-80, -15)), "axes": (U(110, 210), U(80, 150)), "angle": U(-0.5, 0.5),
            "harmonics": [(U(0, 0.06), U(0, 2 * np.pi)) for _ in range(3)], "subcutaneous": U(2, 30),
            "muscle": U(3, 20), "rib_band": U(6, 14), "ribs": int(rng.integers(4, 14)),
            "rib_phase": U(0, 2 * np.pi), "spine_radius": U(12, 22), "aorta": (U(5, 40), U(12, 35)),
            "aorta_radius": U(8, 16), "mediastinum": (U(20, 45), U(30, 70))}
    abdomen = {"liver": rng.random() < 0.4, "liver_cut": U(-40, 30), "liver_tilt": U(-0.6, 0.6),
               "stomach": rng.random() < 0.2, "stomach_pos": (U(30, 90), U(-60, 0)), "stomach_r": U(15, 40),
               "spleen": rng.random() < 0.15, "spleen_pos": (U(50, 110), U(-100, -50)), "spleen_r": U(12, 30)}
    effusion = U(1.0, 6.0) if rng.random() < 0.08 else 0.0
    return Anatomy(level, lv_radius, wall, U(0.0, 0.15), U(0, np.pi), lv_h, wall_h, papillary, trabeculae, scar, rv,
                   fat, great, body, abdomen, effusion)


# ---- rasterisation ---------------------------------------------------------------------------------


def frame_coordinates(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) in mm of every pixel centre of `grid` in the anatomical frame, warped smoothly."""
    h, w = grid.shape
    ys = (np.arange(h) - (h - 1) / 2) * grid.spacing_mm - grid.centre_mm[1]
    xs = (np.arange(w) - (w - 1) / 2) * grid.spacing_mm - grid.centre_mm[0]
    x, y = np.meshgrid(xs, ys)
    c, s = np.cos(grid.angle), np.sin(grid.angle)
    u = c * x + s * y
    v = -s * x + c * y  # image y points down, anatomical v up: the sign flip is part of the pose
    if grid.mirrored:
        u = -u
    if grid.warp_mm > 0:
        du, dv = _smooth_field(grid, 2)
        u, v = u + du, v + dv
    return u, v


def _smooth_field(grid: Grid, n: int) -> list[np.ndarray]:
    """n smooth random fields (mm) of amplitude warp_mm and correlation length warp_scale_mm."""
    rng = np.random.default_rng(grid.warp_seed)
    h, w = grid.shape
    coarse = (max(2, int(np.ceil(h * grid.spacing_mm / grid.warp_scale_mm)) + 1),
              max(2, int(np.ceil(w * grid.spacing_mm / grid.warp_scale_mm)) + 1))
    out = []
    for _ in range(n):
        field = rng.normal(0.0, grid.warp_mm, coarse)
        out.append(ndimage.zoom(field, (h / coarse[0], w / coarse[1]), order=3, grid_mode=True, mode="nearest")[:h, :w])
    return out


def _radius(angle: np.ndarray, base: float, harmonics, ellipticity: float = 0.0, axis: float = 0.0) -> np.ndarray:
    r = 1.0 + ellipticity * np.cos(2 * (angle - axis))
    for k, (amp, phase) in enumerate(harmonics, start=1):
        r = r + amp * np.cos(k * angle + phase)
    return base * r


def _disk(u, v, cu, cv, radius) -> np.ndarray:
    return (u - cu) ** 2 + (v - cv) ** 2 <= radius ** 2


def _ellipse(u, v, cu, cv, a, b, angle=0.0) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    du, dv = u - cu, v - cv
    return ((c * du + s * dv) / a) ** 2 + ((-s * du + c * dv) / b) ** 2 <= 1.0


def _angle_in(psi: np.ndarray, centre: float, half_width: float) -> np.ndarray:
    return np.abs(np.mod(psi - centre + np.pi, 2 * np.pi) - np.pi) <= half_width


def render(a: Anatomy, grid: Grid) -> np.ndarray:
    """The label map (H, W) uint8 of structure ids for anatomy `a` on `grid`."""
    u, v = frame_coordinates(grid)
    out = np.zeros(grid.shape, dtype=np.uint8)
    _body(out, u, v, a)
    _heart(out, u, v, a)
    return out


def _body(out, u, v, a: Anatomy) -> None:
    b = a.body
    bu, bv = b["offset"]
    du, dv = u - bu, v - bv
    c, s = np.cos(b["angle"]), np.sin(b["angle"])
    pu, pv = c * du + s * dv, -s * du + c * dv
    theta = np.arctan2(pv / b["axes"][1], pu / b["axes"][0])
    # distance inside the outline, approximately in mm: (1 − ρ) · local radius
    rho = np.hypot(pu / b["axes"][0], pv / b["axes"][1]) / _radius(theta, 1.0, b["harmonics"])
    local = np.hypot(b["axes"][0] * np.cos(theta), b["axes"][1] * np.sin(theta))
    depth = (1.0 - rho) * local
    back = pv < -0.8 * b["axes"][1]  # the back is flat (the patient lies on it)
    inside = (depth > 0) & ~back
    out[inside] = S.BODY
    fat_in = b["subcutaneous"]
    muscle_in = fat_in + b["muscle"]
    cavity_in = muscle_in + b["rib_band"]
    out[inside & (depth <= fat_in)] = S.SUBCUTANEOUS_FAT
    out[inside & (depth > fat_in) & (depth <= muscle_in)] = S.CHEST_MUSCLE
    cavity = inside & (depth > cavity_in)
    # spine at the posterior midline, paraspinal muscles beside it, the canal behind the vertebral body
    sv = -0.8 * b["axes"][1] + cavity_in * 0.5 + b["spine_radius"] * 1.6
    spine_u, spine_v = bu - s * sv, bv + c * sv
    spine = _disk(u, v, spine_u, spine_v, b["spine_radius"])
    canal = _disk(u, v, spine_u + s * b["spine_radius"] * 1.3, spine_v - c * b["spine_radius"] * 1.3, b["spine_radius"] * 0.45)
    para = (_disk(u, v, spine_u + c * 30 + s * 18, spine_v + s * 30 - c * 18, b["spine_radius"] * 1.2)
            | _disk(u, v, spine_u - c * 30 + s * 18, spine_v - s * 30 - c * 18, b["spine_radius"] * 1.2))
    mediastinum = _ellipse(u, v, 0.5 * (spine_u), 0.5 * (spine_v), b["mediastinum"][0], b["mediastinum"][1] + 0.5 * np.hypot(spine_u, spine_v),
                           np.arctan2(spine_v, spine_u) + np.pi / 2)
    out[cavity] = S.LUNG
    out[cavity & mediastinum] = S.MEDIASTINUM
    out[inside & para] = S.PARASPINAL_MUSCLE
    out[inside & spine] = S.SPINE
    out[inside & canal] = S.SPINAL_CANAL
    au, av = b["aorta"]
    out[inside & _disk(u, v, spine_u + au * (1 if bu < 0 else -1), spine_v + av, b["aorta_radius"])] = S.DESCENDING_AORTA
    # ribs: small rings in the band between chest wall muscle and lung
    ring = inside & (depth > muscle_in) & (depth <= cavity_in)
    rib_angles = b["rib_phase"] + np.linspace(0, 2 * np.pi, b["ribs"], endpoint=False)
    rib_zone = np.zeros_like(inside)
    for t in rib_angles:
        rib_zone |= _angle_in(theta, t, 0.09)
    out[ring & rib_zone] = S.RIB
    out[ring & rib_zone & (np.abs(depth - 0.5 * (muscle_in + cavity_in)) < 0.2 * b["rib_band"])] = S.RIB_MARROW
    ab = a.abdomen
    if ab["liver"]:  # the dome of the liver on the right (−u) side, under the heart
        cut = (u - ab["liver_cut"]) * np.cos(ab["liver_tilt"]) + (v + 20) * np.sin(ab["liver_tilt"]) < 0
        out[cavity & cut & ~mediastinum & (v < 10)] = S.LIVER
    if ab["stomach"]:
        out[cavity & _disk(u, v, *ab["stomach_pos"], ab["stomach_r"])] = S.STOMACH
    if ab["spleen"]:
        out[cavity & _disk(u, v, *ab["spleen_pos"], ab["spleen_r"])] = S.SPLEEN


def _heart(out, u, v, a: Anatomy) -> None:
    r = np.hypot(u, v)
    psi = np.arctan2(v, u)  # 0 towards the lateral wall, ±π towards the septum and RV
    epi = _radius(psi, a.lv_radius, a.lv_harmonics, a.lv_ellipticity, a.lv_axis)
    thickness = np.clip(a.wall * _radius(psi, 1.0, a.wall_harmonics), 1.5, None)
    endo = np.clip(epi - thickness, 0.0, None)
    has_lv = -0.02 <= a.level <= 1.0
    has_cavity = a.level <= 0.93

    # fat and the RV are painted first; the LV covers them where they overlap
    f = a.fat
    heart_outer = epi + f["epicardial"]
    if a.rv["present"] and has_lv:
        rv = a.rv
        cu, cv = (a.lv_radius + rv["depth"] * 0.4) * np.cos(rv["angle"]), (a.lv_radius + rv["depth"] * 0.4) * np.sin(rv["angle"])
        ca, sa = np.cos(rv["angle"]), np.sin(rv["angle"])
        du, dv = u - cu, v - cv
        along, across = ca * du + sa * dv, -sa * du + ca * dv
        half_w = a.lv_radius * rv["width"]
        rv_outer = (along / (rv["depth"] + rv["wall"])) ** 2 + (across / (half_w + rv["wall"])) ** 2 <= 1.0
        rv_inner = (along / max(rv["depth"], 1.0)) ** 2 + (across / half_w) ** 2 <= 1.0
        around_lv = r <= epi + rv["gap"]
        fat_ring = (r <= heart_outer + 2) | (rv_outer & ~rv_inner)
        coverage = _angle_in(psi, f["start"], np.pi * f["coverage"])
        out[fat_ring & coverage & (r > epi)] = S.PERICARDIAL_FAT
        out[rv_outer & ~around_lv] = S.RV_WALL
        out[rv_inner & ~around_lv] = S.RV_BLOOD
        # fat in the interventricular grooves, at both RV insertion points
        for side in (-1, 1):
            g = rv["angle"] + side * 0.9
            out[_disk(u, v, (epi.mean() + 2) * np.cos(g), (epi.mean() + 2) * np.sin(g), f["groove"] * 0.5) & (r > epi)] = S.PERICARDIAL_FAT
    elif f["epicardial"] > 0 and has_lv:
        out[(r <= heart_outer) & (r > epi) & _angle_in(psi, f["start"], np.pi * f["coverage"])] = S.PERICARDIAL_FAT
    if f["pericardial"] > 0:
        t = f["pericardial_angle"]
        d = a.lv_radius + f["epicardial"] + f["pericardial"] * 0.5 + 4
        out[_ellipse(u, v, d * np.cos(t), d * np.sin(t), f["pericardial"], f["pericardial"] * 0.5, t + np.pi / 2)] = S.PERICARDIAL_FAT
    if a.effusion > 0 and has_lv:
        out[(r > epi) & (r <= epi + a.effusion)] = S.PERICARDIAL_EFFUSION

    g = a.great_vessels
    for key, label, angle, size in (("left_atrium", S.LEFT_ATRIUM, g["la_angle"], g["sizes"][0]),
                                    ("right_atrium", S.RIGHT_ATRIUM, g["ra_angle"], g["sizes"][1]),
                                    ("aortic_root", S.AORTIC_ROOT, g["ao_angle"], g["sizes"][2]),
                                    ("pulmonary_artery", S.PULMONARY_ARTERY, g["pa_angle"], g["sizes"][3])):
        if g[key] or (a.level < 0 and key in ("left_atrium", "aortic_root")):
            d = a.lv_radius + size * 0.8
            out[_disk(u, v, d * np.cos(angle), d * np.sin(angle), size)] = label

    if not has_lv:
        return
    myo = r <= epi
    out[myo] = S.LV_MYOCARDIUM
    wall_pos = np.clip((r - endo) / np.maximum(epi - endo, 1e-3), 0.0, 1.0)  # 0 endocardium … 1 epicardium
    _scar(out, myo & (r > endo if has_cavity else myo), psi, wall_pos, r, a)
    if has_cavity:
        cavity = r < endo
        out[cavity] = S.LV_BLOOD
        mean_endo = float(np.mean(endo))
        for angle, size in a.papillary:
            d = max(0.0, mean_endo - size * 0.9)
            out[cavity & _disk(u, v, d * np.cos(angle), d * np.sin(angle), size)] = S.PAPILLARY
        for angle, size in a.trabeculae:
            out[cavity & _disk(u, v, mean_endo * np.cos(angle), mean_endo * np.sin(angle), size)] = S.TRABECULAE


def _scar(out, wall, psi, pos, r, a: Anatomy) -> None:
    s = a.scar
    if s["pattern"] == "none":
        return
    # a ragged border: the wall position threshold varies smoothly along the sector
    ragged = s["edge_noise"] * np.sin(5 * psi + s["centre"]) * np.cos(3 * psi)
    sector = _angle_in(psi, s["centre"], s["half_width"])
    if s["pattern"] == "subendocardial" or s["pattern"] == "transmural":
        scar = sector & (pos <= s["extent"] + ragged)
    elif s["pattern"] == "epicardial":
        scar = sector & (pos >= 1.0 - s["extent"] + ragged)
    elif s["pattern"] == "midwall":
        scar = sector & (np.abs(pos - 0.5 - ragged * 0.5) <= s["band"])
    else:  # patchy: several small blobs inside the wall
        scar = np.zeros_like(wall)
        mean_r = float(np.mean(r[wall])) if wall.any() else 0.0
        for angle, depth, size in s["blobs"]:
            d = mean_r + (depth - 0.5) * a.wall
            scar |= (np.hypot(r * np.cos(psi) - d * np.cos(angle), r * np.sin(psi) - d * np.sin(angle)) <= size)
    scar &= wall
    out[scar] = S.SCAR
    if s["no_reflow"] and s["pattern"] in ("subendocardial", "transmural"):
        out[scar & _angle_in(psi, s["centre"], 0.5 * s["half_width"]) & (pos <= 0.4 * s["extent"])] = S.NO_REFLOW
