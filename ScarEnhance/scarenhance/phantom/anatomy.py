"""Short-axis chest anatomy around the left ventricle, drawn slice by slice as a tissue map.

Everything is in millimetres in an anatomical frame centred on the LV long axis:
X points to the LV lateral wall (away from the RV), Y anteriorly, z runs from the base (z = 0)
towards the apex. Angles ψ are measured from the septum (the RV direction) and grow towards the
inferior wall: anterior RV insertion ≈ −60°, anterior wall ≈ −90°, lateral wall ±180°, inferior ≈ +110°.

The LV is a truncated ellipsoid: cavity radius R(z) = R0·√(1 − (z/L)²), epicardium likewise over
L + apical wall, so slices shrink from base to apex and the last ones hold a cap of myocardium only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .tissues import AIR, BLOOD, FAT, LIVER, LUNG, MARROW, MUSCLE, MYOCARDIUM

# LV labels of the centre plane of a slice (before scar is added)
OUTSIDE, CAVITY, WALL = 0, 1, 2


@dataclass
class Anatomy:
    """One patient's heart and chest, in mm (see module docstring for the frame)."""

    cavity_radius: float  # R0: end-diastolic cavity radius at the base
    cavity_ellipticity: float  # cavity radii R0·(1 ± e)
    cavity_axis: float  # orientation of the long cavity radius, radians
    wall: float  # typical LV wall thickness
    wall_harmonics: tuple  # (amp1, phase1, amp2, phase2): smooth variation of thickness with ψ
    hcm_septum: float  # extra septal thickness of hypertrophic cardiomyopathy (0 when none)
    hcm_centre: float  # ψ of the thickest septal segment
    hcm_width: float  # angular half-width of the hypertrophy, radians
    length: float  # L: base-to-apex length of the cavity
    apex_wall: float  # myocardium beyond the cavity apex
    rv_angle: float  # direction of the RV from the LV centre (anatomical θ, radians)
    rv_depth: float  # RV semi-axis along rv_angle
    rv_width: float  # RV semi-axis across
    rv_wall: float
    rv_length: float
    epi_fat: float  # epicardial fat everywhere
    groove_fat: float  # extra fat in the interventricular grooves
    papillary: tuple  # ((ψ, radius mm), (ψ, radius mm)) at mid-ventricle
    trabeculae: np.ndarray = field(repr=False)  # (n, 2): ψ, radius mm
    body_centre: tuple  # (X, Y) of the chest ellipse
    body_axes: tuple  # (semi-axis X, semi-axis Y)
    body_angle: float
    body_shape: tuple  # ((amp, phase), ...) of the 2nd, 3rd, 4th outline harmonics
    body_flat: float  # the back is cut flat at this fraction of the AP semi-axis
    subcutaneous_fat: float
    chest_muscle: float
    spine_centre: tuple
    spine_radius: float
    aorta_offset: tuple  # aorta centre relative to the spine centre
    aorta_radius: float
    liver_top: tuple  # (Y of the dome at the base, rise in mm per mm of z)
    liver_x: float  # X of the dome's top
    liver_curvature: float
    lung_vessels: np.ndarray = field(repr=False)  # (n, 5): X, Y at z=0, dX/dz, dY/dz, radius

    # ----- LV surfaces -----------------------------------------------------------------------------
    def wall_thickness(self, psi: np.ndarray, z: float) -> np.ndarray:
        a1, p1, a2, p2 = self.wall_harmonics
        t = self.wall * (1.0 + a1 * np.cos(psi - p1) + a2 * np.cos(2.0 * psi - p2))
        if self.hcm_septum > 0:
            d = _wrap(psi - self.hcm_centre) / self.hcm_width
            # hypertrophy is worst at the base-mid septum and fades towards the apex
            t = t + self.hcm_septum * np.exp(-d * d) * (1.0 - 0.6 * min(max(z / self.length, 0.0), 1.0))
        return t

    def _base_endo(self, psi: np.ndarray) -> np.ndarray:
        a = self.cavity_radius * (1.0 + self.cavity_ellipticity)
        b = self.cavity_radius * (1.0 - self.cavity_ellipticity)
        c, s = np.cos(psi - self.cavity_axis), np.sin(psi - self.cavity_axis)
        return a * b / np.sqrt((b * c) ** 2 + (a * s) ** 2)

    def endo_radius(self, psi: np.ndarray, z: float) -> np.ndarray:
        """Cavity radius (mm) at angles ψ in the plane z; 0 beyond the cavity apex."""
        return self._base_endo(psi) * _ellipsoid(z, self.length)

    def epi_radius(self, psi: np.ndarray, z: float) -> np.ndarray:
        """Epicardial radius (mm) at angles ψ in the plane z; 0 beyond the apex."""
        return (self._base_endo(psi) + self.wall_thickness(psi, z)) * _ellipsoid(z, self.length + self.apex_wall)

    def heart_extent(self) -> float:
        """Radius (mm) of a circle around the LV centre that holds the LV, RV and epicardial fat."""
        lv = self.cavity_radius * (1 + self.cavity_ellipticity) + self.wall + self.hcm_septum
        rv = lv + self.rv_depth + self.rv_wall
        return max(lv, rv, np.hypot(0.5 * lv, self.rv_width + self.rv_wall)) + self.epi_fat + self.groove_fat + 2.0

    def rv_insertions(self, z: float) -> tuple[float, float]:
        """ψ (radians) of the anterior and inferior RV insertion points in plane z (where the RV wall
        leaves the LV epicardium); (−1.0, 1.0) when the RV does not reach this plane."""
        psi = np.linspace(0.0, np.pi, 361)
        out = []
        for sign in (-1.0, 1.0):
            p = sign * psi
            r = self.epi_radius(p, z)
            x, y = r * np.cos(p), r * np.sin(p)  # septum-aligned frame: RV centre on +x
            inside = self._rv_rho(x, y, z, self.rv_wall) <= 1.0
            k = int(np.argmin(inside)) if not inside.all() else len(p) - 1
            out.append(float(p[k]) if inside[0] else sign * 1.0)
        return out[0], out[1]

    # ----- RV ----------------------------------------------------------------------------------------
    def _rv_scale(self, z: float) -> float:
        return float(_ellipsoid(z, self.rv_length))

    def _rv_rho(self, u: np.ndarray, v: np.ndarray, z: float, grow: float = 0.0) -> np.ndarray:
        """Normalised elliptic radius of the RV (grown by `grow` mm) at septum-frame points (u, v):
        u along the RV direction, v across; < 1 inside. The ellipse is centred halfway out the
        septum, so once the LV is painted over it the RV is a crescent wrapping the septum, its free
        wall rv_depth beyond the septum and its insertion points ~50–70° either side."""
        s = self._rv_scale(z)
        if s <= 0:
            return np.full(np.shape(u), np.inf)
        septum = float(self._base_endo(np.array(0.0)) + self.wall_thickness(np.array(0.0), z))
        septum *= _ellipsoid(z, self.length + self.apex_wall)
        centre = 0.5 * septum
        a = 0.5 * septum + self.rv_depth * s + grow
        b = self.rv_width * max(s, 0.3) + grow
        return np.sqrt(((u - centre) / a) ** 2 + (v / b) ** 2)

    # ----- rendering ---------------------------------------------------------------------------------
    def render_body(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Tissue map (H, W) uint8 of the parts of the chest that do not change from slice to slice
        (body outline, chest wall, thoracic cavity as lung, spine, aorta) at anatomical points (X, Y) mm.
        Drawn once per case, so the body stays put while the LV centre drifts across slices."""
        tissue = np.full(X.shape, AIR, dtype=np.uint8)
        self._paint_body(tissue, X, Y)
        return tissue

    def render_chest(self, body: np.ndarray, X: np.ndarray, Y: np.ndarray, z: float) -> np.ndarray:
        """Tissue map (H, W) uint8 of everything but the heart in plane z: `body` (from render_body)
        with the liver and the pulmonary vessels of this plane added."""
        tissue = body.copy()
        # liver under the diaphragm dome, rising towards the apex; a thin muscular diaphragm above it
        top = self.liver_top[0] + self.liver_top[1] * z
        below = Y - (top - self.liver_curvature * (X - self.liver_x) ** 2)  # < 0 under the dome
        lung = tissue == LUNG
        tissue[lung & (below < 4.0)] = MUSCLE
        tissue[lung & (below < 0.0)] = LIVER
        # pulmonary vessels: bright dots where there is lung
        for vx, vy, dx, dy, rad in self.lung_vessels:
            _paint_disc(tissue, X, Y, vx + dx * z, vy + dy * z, rad, BLOOD, only=LUNG)
        return tissue

    def render_heart(self, tissue: np.ndarray, X: np.ndarray, Y: np.ndarray, z: float) -> "SliceAnatomy":
        """Paint LV, RV and epicardial fat of plane z over `tissue` (H, W) (in place) at anatomical
        points (X, Y) mm, which must cover the circle of heart_extent() around the LV centre."""
        r = np.hypot(X, Y)
        theta = np.arctan2(Y, X)
        psi = _wrap(theta - self.rv_angle)
        base = self._base_endo(psi)  # = endo_radius / epi_radius without recomputing the ellipse twice
        r_endo = base * _ellipsoid(z, self.length)
        r_epi = (base + self.wall_thickness(psi, z)) * _ellipsoid(z, self.length + self.apex_wall)

        # septum-aligned coordinates for the RV
        u = r * np.cos(psi)
        v = r * np.sin(psi)
        rv_blood = self._rv_rho(u, v, z) <= 1.0
        rv_outer = self._rv_rho(u, v, z, self.rv_wall) <= 1.0

        # epicardial fat: a band around LV and RV, thicker in the interventricular grooves
        groove = self.groove_fat * (np.exp(-(((np.abs(psi) - 1.05) / 0.35) ** 2)))
        fat_band = self.epi_fat + groove
        lv_fat = (r <= r_epi + fat_band) & (r_epi > 0)
        rv_fat = self._rv_rho(u, v, z, self.rv_wall + 0.6 * self.epi_fat) <= 1.0
        tissue[lv_fat | rv_fat] = FAT

        epi = r <= r_epi
        cavity = r < r_endo
        tissue[rv_outer & ~epi] = MYOCARDIUM  # RV free wall
        tissue[rv_blood & ~epi] = BLOOD
        tissue[epi] = MYOCARDIUM
        tissue[cavity] = BLOOD

        # papillary muscles and trabeculae: myocardial tissue on the endocardium, labelled cavity (as in EMIDEC)
        s = z / self.length
        blobs = [(p, rad * min(1.0, 1.6 * (1.0 - s))) for p, rad in self.papillary] if 0.1 < s < 0.85 else []
        if 0.3 < s < 0.9:
            blobs += [(float(p), float(rad)) for p, rad in self.trabeculae]
        for psi_p, rad in blobs:
            rc = float(self.endo_radius(np.array(psi_p), z)) - 0.8 * rad
            if rc <= rad:
                continue
            px, py = rc * np.cos(psi_p + self.rv_angle), rc * np.sin(psi_p + self.rv_angle)
            tissue[((X - px) ** 2 + (Y - py) ** 2 <= rad * rad) & cavity] = MYOCARDIUM

        lv = np.zeros(X.shape, dtype=np.uint8)
        lv[epi] = WALL
        lv[cavity] = CAVITY
        depth = np.where(epi & ~cavity, (r - r_endo) / np.maximum(r_epi - r_endo, 1e-3), -1.0).astype(np.float32)
        return SliceAnatomy(tissue=tissue, lv=lv, psi=psi.astype(np.float32), depth=depth,
                            radius=r.astype(np.float32), wall_mm=(r_epi - r_endo).astype(np.float32))

    def _paint_body(self, tissue: np.ndarray, X: np.ndarray, Y: np.ndarray) -> None:
        """Body outline, chest wall, thoracic cavity (lung), spine with paraspinal muscles, aorta."""
        cb, sb = np.cos(self.body_angle), np.sin(self.body_angle)
        bx, by = X - self.body_centre[0], Y - self.body_centre[1]
        bu, bv = bx * cb + by * sb, -bx * sb + by * cb
        ax, ay = self.body_axes
        # a lumpy ellipse with a flat back (the patient lies on the table)
        angle = np.arctan2(bv / ay, bu / ax)
        outline = np.ones_like(angle)
        for k, (amp, phase) in enumerate(self.body_shape, start=2):
            outline += amp * np.cos(k * angle + phase)
        outline *= outline

        def inside(grow: float) -> np.ndarray:
            return ((bu / (ax + grow)) ** 2 + (bv / (ay + grow)) ** 2 <= outline) & (bv >= -(ay * self.body_flat + grow))

        tissue[inside(0.0)] = FAT
        tissue[inside(-self.subcutaneous_fat)] = MUSCLE
        thorax = inside(-self.subcutaneous_fat - self.chest_muscle)
        tissue[thorax] = LUNG

        # spine: vertebral body and spinous process (marrow), paraspinal muscles behind, aorta beside
        sx, sy = self.spine_centre
        r = self.spine_radius
        win = _window(X, Y, sx, sy - 1.2 * r, 3.5 * r)
        Xw, Yw, tw = X[win], Y[win], tissue[win]
        body = inside(-0.5 * self.subcutaneous_fat)[win]
        for side in (-1.0, 1.0):
            para = ((Xw - sx - side * 1.5 * r) / (1.2 * r)) ** 2 + ((Yw - sy + 1.7 * r) / (1.3 * r)) ** 2 <= 1.0
            tw[para & body] = MUSCLE
        tw[((Xw - sx) / (0.35 * r)) ** 2 + ((Yw - sy + 1.8 * r) / (0.8 * r)) ** 2 <= 1.0] = MARROW
        tw[(Xw - sx) ** 2 + (Yw - sy) ** 2 <= r * r] = MARROW
        _paint_disc(tissue, X, Y, sx + self.aorta_offset[0], sy + self.aorta_offset[1], self.aorta_radius, BLOOD)


@dataclass
class SliceAnatomy:
    """One plane: tissue codes (H, W) uint8; LV labels (H, W) uint8 (0 outside, 1 cavity, 2 wall);
    ψ (H, W) float32 radians; wall depth (H, W) float32, 0 at the endocardium, 1 at the
    epicardium, −1 outside the LV wall; radius from the LV centre and local wall thickness, (H, W)
    float32 mm."""

    tissue: np.ndarray
    lv: np.ndarray
    psi: np.ndarray
    depth: np.ndarray
    radius: np.ndarray
    wall_mm: np.ndarray


def sample_anatomy(rng: np.random.Generator, hcm: "bool | None" = None) -> Anatomy:
    """Draw one patient's anatomy. About 15 % of patients have septal hypertrophy (HCM)."""
    r0 = rng.uniform(20.0, 27.5) if rng.random() > 0.1 else rng.uniform(27.5, 31.0)  # 10 % dilated
    wall = rng.uniform(6.0, 11.0)
    if hcm is None:
        hcm = rng.random() < 0.15
    septum = rng.uniform(15.0, 25.0)  # drawn always, so other draws do not depend on `hcm`
    hcm_extra = max(septum - wall, 4.0) if hcm else 0.0
    length = rng.uniform(65.0, 95.0)
    rv_angle = np.pi - rng.uniform(-0.15, 0.45)  # RV to the side, a bit anterior
    rv_depth = rng.uniform(9.0, 16.0)
    rv_width = rng.uniform(26.0, 34.0)
    papillary = ((rng.uniform(-2.5, -2.1), rng.uniform(3.5, 6.0)), (rng.uniform(2.2, 2.7), rng.uniform(3.5, 6.0)))
    n_trab = int(rng.integers(2, 9))
    trabeculae = np.column_stack([rng.uniform(-np.pi, np.pi, n_trab), rng.uniform(1.0, 2.5, n_trab)])

    lv_out = r0 * 1.08 + wall + hcm_extra
    # chest: the heart lies left-anterior, so the body centre is to the RV side and posterior
    body_ay = rng.uniform(95.0, 130.0)
    body_ax = rng.uniform(1.35, 1.75) * body_ay
    subcut = rng.uniform(5.0, 28.0)
    muscle = rng.uniform(7.0, 18.0)
    wall_in = subcut + muscle
    body_cx = rng.uniform(-75.0, -35.0)
    body_flat = rng.uniform(0.8, 0.95)
    spine_r = rng.uniform(14.0, 19.0)
    # the anterior chest wall lies a few mm in front of the heart (at the LV centre's X) ...
    heart_top = lv_out + rng.uniform(3.0, 20.0)
    rng.uniform(6.0, 20.0)  # no longer used, still drawn: keeps every seed's case as the shipped models saw it
    while True:
        ax_t, ay_t = body_ax - wall_in, body_ay - wall_in
        body_cy = heart_top - ay_t * np.sqrt(max(1.0 - (body_cx / ax_t) ** 2, 0.05))
        back = body_cy - ay_t * body_flat  # inner surface of the back
        lateral = body_cx + ax_t * np.sqrt(max(1.0 - (body_cy / ay_t) ** 2, 0.0))
        # ... and the chest is deep and wide enough for the spine behind it and lung beside it
        if back <= -(lv_out + 2.0 * spine_r + 12.0) and lateral >= lv_out + 15.0:
            break
        body_ay += 5.0
        body_ax += 5.0
    spine_cx = body_cx + rng.uniform(0.0, 30.0)
    spine_cy = back + 0.9 * spine_r
    aorta_r = rng.uniform(9.0, 13.0)
    aorta_off = (rng.uniform(16.0, 30.0), spine_r * rng.uniform(0.6, 1.0) + aorta_r * rng.uniform(0.2, 0.6))
    aorta = np.array([spine_cx + aorta_off[0], spine_cy + aorta_off[1]])
    if np.hypot(*aorta) < lv_out + aorta_r + 4.0:  # keep it clear of the heart
        aorta_off = (aorta_off[0], aorta_off[1] - (lv_out + aorta_r + 4.0 - np.hypot(*aorta)))

    liver_top0 = -(lv_out + rng.uniform(10.0, 40.0))
    liver_rise = rng.uniform(0.1, 0.45)
    n_vessels = int(rng.integers(8, 22))
    vessels = np.column_stack([
        rng.uniform(-170.0, 170.0, n_vessels), rng.uniform(-120.0, 100.0, n_vessels),
        rng.uniform(-0.4, 0.4, n_vessels), rng.uniform(-0.4, 0.4, n_vessels), rng.uniform(1.5, 4.0, n_vessels),
    ])
    return Anatomy(
        cavity_radius=r0, cavity_ellipticity=rng.uniform(0.0, 0.08), cavity_axis=rng.uniform(-np.pi, np.pi),
        wall=wall, wall_harmonics=(rng.uniform(0.0, 0.15), rng.uniform(-np.pi, np.pi),
                                   rng.uniform(0.0, 0.08), rng.uniform(-np.pi, np.pi)),
        hcm_septum=hcm_extra, hcm_centre=rng.uniform(-0.5, 0.15), hcm_width=rng.uniform(0.6, 1.1),
        length=length, apex_wall=max(4.0, wall * rng.uniform(0.6, 0.9)),
        rv_angle=float(rv_angle), rv_depth=rv_depth, rv_width=rv_width, rv_wall=rng.uniform(2.5, 4.5),
        rv_length=length * rng.uniform(0.7, 0.9), epi_fat=rng.uniform(0.0, 3.0), groove_fat=rng.uniform(2.0, 10.0),
        papillary=papillary, trabeculae=trabeculae, body_centre=(body_cx, body_cy), body_axes=(body_ax, body_ay),
        body_angle=rng.uniform(-0.12, 0.12),
        body_shape=tuple((rng.uniform(0.0, 0.04), rng.uniform(-np.pi, np.pi)) for _ in range(3)), body_flat=body_flat,
        subcutaneous_fat=subcut, chest_muscle=muscle,
        spine_centre=(spine_cx, spine_cy), spine_radius=spine_r, aorta_offset=aorta_off, aorta_radius=aorta_r,
        liver_top=(liver_top0, liver_rise), liver_x=rng.uniform(-90.0, -20.0), liver_curvature=rng.uniform(0.004, 0.01),
        lung_vessels=vessels,
    )


def _window(X: np.ndarray, Y: np.ndarray, cx: float, cy: float, radius: float) -> tuple[slice, slice]:
    """Pixel window (rows, cols) of the affine grid (X, Y) (H, W) holding the disc of `radius` mm
    around (cx, cy); empty slices when it lies outside. Saves evaluating small shapes on the whole plane."""
    H, W = X.shape
    x0, y0 = X[0, 0], Y[0, 0]
    dxi, dyi = (X[1, 0] - x0, Y[1, 0] - y0) if H > 1 else (0.0, 1.0)
    dxj, dyj = (X[0, 1] - x0, Y[0, 1] - y0) if W > 1 else (1.0, 0.0)
    det = dxi * dyj - dxj * dyi
    # pixel (i, j) of the centre: solve [dxi dxj; dyi dyj]·(i, j) = (cx − x0, cy − y0)
    i = ((cx - x0) * dyj - (cy - y0) * dxj) / det
    j = (dxi * (cy - y0) - dyi * (cx - x0)) / det
    step = min(np.hypot(dxi, dyi), np.hypot(dxj, dyj))
    half = radius / step + 1.0
    rows = slice(int(np.clip(np.floor(i - half), 0, H)), int(np.clip(np.ceil(i + half) + 1, 0, H)))
    cols = slice(int(np.clip(np.floor(j - half), 0, W)), int(np.clip(np.ceil(j + half) + 1, 0, W)))
    return rows, cols


def _paint_disc(tissue: np.ndarray, X: np.ndarray, Y: np.ndarray, cx: float, cy: float, radius: float,
                code: int, only: "int | None" = None) -> None:
    """Set tissue to `code` inside the disc (cx, cy, radius mm), optionally only over tissue `only`."""
    win = _window(X, Y, cx, cy, radius)
    d2 = (X[win] - cx) ** 2 + (Y[win] - cy) ** 2
    mask = d2 <= radius * radius
    if only is not None:
        mask &= tissue[win] == only
    tissue[win][mask] = code


def _ellipsoid(z: float, half_length: float) -> float:
    """√(1 − (z/L)²) for 0 ≤ z < L; 1 above the base plane (z < 0); 0 beyond the apex."""
    q = max(z, 0.0) / half_length
    return float(np.sqrt(1.0 - q * q)) if q < 1.0 else 0.0


def _wrap(a: np.ndarray) -> np.ndarray:
    """Angles wrapped to [−π, π)."""
    return (a + np.pi) % (2.0 * np.pi) - np.pi
