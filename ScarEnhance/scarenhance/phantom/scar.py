"""Myocardial scar patterns, as soft weights on the LV wall of each plane.

A pattern is drawn once per patient (`sample_scar`) and evaluated plane by plane (`ScarSpec.weights`)
from the wall coordinates of anatomy.py: ψ (angle from the septum, radians) and wall depth (0 at the
endocardium, 1 at the epicardium). Weights in [0, 1] blend scar signal into myocardium, which gives a
grey zone at the border; labels are the weights thresholded at 0.5.

Patterns (EMIDEC/MyoPS-like mix):
- none
- subendocardial: ischaemic, from the endocardium through ≤ 60 % of the wall in one coronary territory
- transmural: ischaemic, most of the wall at the territory centre, subendocardial at its edges
- no_reflow: a transmural infarct with a dark microvascular-obstruction core (EMIDEC label 4)
- mid_wall: a band inside the wall, septal or inferolateral (non-ischaemic cardiomyopathy)
- rv_insertion: patchy blobs at the RV insertion points (typical of hypertrophic cardiomyopathy)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PATTERNS = ("none", "subendocardial", "transmural", "no_reflow", "mid_wall", "rv_insertion")
PATTERN_PROBABILITIES = (0.30, 0.18, 0.16, 0.13, 0.11, 0.12)

# coronary territories: range of the centre ψ (radians), of the first and of the last scarred z
# (fractions of the LV length, 0 base, 1 apex)
TERRITORIES = {
    "LAD": ((-1.7, -0.5), (0.2, 0.55), (0.95, 1.1)),  # anterior / anteroseptal, mid to apex
    "RCA": ((0.9, 2.0), (-0.05, 0.2), (0.5, 0.8)),  # inferior / inferoseptal, base to mid
    "LCx": ((2.5, 3.6), (0.0, 0.3), (0.55, 0.9)),  # lateral / inferolateral
}


@dataclass
class ScarSpec:
    """One patient's scar. z_range is in fractions of the LV cavity length (0 base, 1 apex)."""

    pattern: str
    territory: str = ""
    centre: float = 0.0  # ψ of the territory centre
    half_width: float = 0.0  # angular half-width, radians
    transmurality: float = 0.0  # fraction of the wall reached at the centre
    band: tuple = (0.0, 0.0)  # mid-wall: (centre depth, half thickness)
    z_range: tuple = (0.0, 0.0)
    core: float = 0.0  # no-reflow core: fraction of the scar depth
    ripple: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)  # (k, 3): freq, amp, phase
    blobs: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)), repr=False)  # (n, 4): side, dψ, depth, radius mm

    def as_dict(self) -> dict:
        d = {"pattern": self.pattern}
        if self.pattern != "none":
            d.update(z_range=[round(float(v), 3) for v in self.z_range])
        if self.pattern in ("subendocardial", "transmural", "no_reflow", "mid_wall"):
            d.update(territory=self.territory, centre_deg=round(float(np.degrees(self.centre)), 1),
                     half_width_deg=round(float(np.degrees(self.half_width)), 1))
        if self.pattern in ("subendocardial", "transmural", "no_reflow"):
            d["transmurality"] = round(float(self.transmurality), 3)
        if self.pattern == "mid_wall":
            d["band"] = [round(float(v), 3) for v in self.band]
        if self.pattern == "no_reflow":
            d["core"] = round(float(self.core), 3)
        if self.pattern == "rv_insertion":
            d["blobs"] = int(len(self.blobs))
        return d

    def weights(self, psi: np.ndarray, depth: np.ndarray, radius: np.ndarray, wall_mm: np.ndarray, s: float,
                insertions: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Scar and no-reflow weights (H, W) float32 in [0, 1] for one plane.

        psi, depth: wall coordinates (H, W) (depth < 0 outside the wall); radius: distance from the LV
        centre (H, W) mm; wall_mm: local wall thickness (H, W) mm; s: the plane's z as a fraction of
        the LV length; insertions: ψ of the anterior and inferior RV insertion points in this plane.
        """
        zero = np.zeros(psi.shape, dtype=np.float32)
        lo, hi = self.z_range
        if self.pattern == "none" or not (lo <= s <= hi):
            return zero, zero
        wall = depth >= 0.0
        # taper the extent towards the ends of the z range, as infarcts narrow at their edges
        zt = float(np.clip(min(s - lo, hi - s) / max(0.25 * (hi - lo), 1e-3), 0.35, 1.0))
        edge_mm = 0.9  # width of the grey zone, mm

        if self.pattern == "rv_insertion":
            return self._blobs(psi, depth, radius, wall, wall_mm, insertions, edge_mm), zero

        d = np.abs(_wrap(psi - self.centre)) / (self.half_width * zt)
        profile = np.clip(1.0 - d * d, 0.0, 1.0)  # 1 at the centre, 0 at the territory edge
        ripple = _ripple(self.ripple, psi, s)
        if self.pattern == "mid_wall":
            centre, half = self.band
            half_here = half * np.sqrt(profile) * (1.0 + ripple)
            dist_mm = (np.abs(depth - centre) - half_here) * wall_mm  # < 0 inside the band
            scar = np.where(wall & (profile > 0), _soft(-dist_mm, edge_mm), 0.0)
            return scar.astype(np.float32), zero

        reach = self.transmurality * np.sqrt(profile) * zt ** 0.5 * (1.0 + ripple)
        dist_mm = (depth - reach) * wall_mm
        scar = np.where(wall & (profile > 0), _soft(-dist_mm, edge_mm), 0.0)
        if self.pattern != "no_reflow":
            return scar.astype(np.float32), zero
        # microvascular obstruction: the subendocardial core of the infarct's central part
        core_reach = self.core * reach * np.clip((profile - 0.35) / 0.3, 0.0, 1.0) * (zt >= 0.7)
        no_reflow = np.where(wall, _soft((core_reach - depth) * wall_mm, edge_mm), 0.0) * (core_reach > 0.05)
        return scar.astype(np.float32), np.minimum(no_reflow, scar).astype(np.float32)

    def _blobs(self, psi, depth, radius, wall, wall_mm, insertions, edge_mm) -> np.ndarray:
        """Union of small round patches (mm radii) around the RV insertion points, inside the wall."""
        scar = np.zeros(psi.shape, dtype=np.float32)
        for side, dpsi, blob_depth, blob_radius in self.blobs:
            anchor = insertions[int(side)] + dpsi
            # distance in mm in wall coordinates: along the wall r·Δψ, across it wall·Δdepth
            along = _wrap(psi - anchor) * radius
            across = (depth - blob_depth) * wall_mm
            dist = np.sqrt(along * along + across * across) - blob_radius
            scar = np.maximum(scar, np.where(wall, _soft(-dist, edge_mm), 0.0))
        return scar


def sample_pattern(rng: np.random.Generator) -> str:
    return str(rng.choice(PATTERNS, p=PATTERN_PROBABILITIES))


def sample_scar(rng: np.random.Generator, pattern: str) -> ScarSpec:
    """Draw the scar of one patient with the given pattern (one of PATTERNS)."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown scar pattern {pattern!r}; choose one of {', '.join(PATTERNS)}")
    ripple = np.column_stack([rng.integers(2, 7, 3), rng.uniform(0.0, 0.18, 3), rng.uniform(-np.pi, np.pi, 3)])
    if pattern == "none":
        return ScarSpec(pattern)
    if pattern == "mid_wall":
        septal = rng.random() < 0.7
        centre = rng.uniform(-0.35, 0.35) if septal else rng.uniform(2.3, 2.9)
        lo = rng.uniform(0.0, 0.3)
        return ScarSpec(pattern, territory="septal" if septal else "inferolateral", centre=centre,
                        half_width=rng.uniform(0.9, 1.8), band=(rng.uniform(0.4, 0.6), rng.uniform(0.15, 0.3)),
                        z_range=(lo, lo + rng.uniform(0.35, 0.7)), ripple=ripple)
    if pattern == "rv_insertion":
        n = int(rng.integers(3, 8))
        side = rng.integers(0, 2, n) if rng.random() < 0.6 else np.full(n, rng.integers(0, 2))
        # patches sit in the septal side of the insertion point (ψ closer to 0)
        toward_septum = np.where(side == 0, 1.0, -1.0) * rng.uniform(-0.1, 0.3, n)
        blobs = np.column_stack([side, toward_septum, rng.uniform(0.25, 0.75, n), rng.uniform(2.5, 6.0, n)])
        lo = rng.uniform(0.0, 0.4)
        return ScarSpec(pattern, z_range=(lo, lo + rng.uniform(0.3, 0.6)), blobs=blobs, ripple=ripple)

    territory = str(rng.choice(list(TERRITORIES)))
    (c_lo, c_hi), (z0_lo, z0_hi), (z1_lo, z1_hi) = TERRITORIES[territory]
    transmural = pattern != "subendocardial"
    return ScarSpec(
        pattern, territory=territory, centre=float(_wrap(np.array(rng.uniform(c_lo, c_hi)))),
        half_width=rng.uniform(1.0, 2.0) if transmural else rng.uniform(0.9, 1.9),
        transmurality=rng.uniform(0.75, 1.05) if transmural else rng.uniform(0.35, 0.6),
        z_range=(rng.uniform(z0_lo, z0_hi), rng.uniform(z1_lo, z1_hi)),
        core=rng.uniform(0.35, 0.7) if pattern == "no_reflow" else 0.0, ripple=ripple,
    )


def _ripple(ripple: np.ndarray, psi: np.ndarray, s: float) -> np.ndarray:
    """Irregular border: a few sinusoids in ψ whose phases drift from plane to plane."""
    out = np.zeros(psi.shape, dtype=np.float32)
    for k, (freq, amp, phase) in enumerate(ripple):
        out += amp * np.sin(freq * psi + phase + (k + 1) * 3.0 * s)
    return out


def _soft(signed_mm: np.ndarray, edge_mm: float) -> np.ndarray:
    """0.5 on the border, → 1 inside (signed_mm > 0), → 0 outside, over about ±edge_mm."""
    return np.clip(0.5 + signed_mm / (2.0 * edge_mm), 0.0, 1.0)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2.0 * np.pi) - np.pi
