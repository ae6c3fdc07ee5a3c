"""Stereo pairs with ground-truth disparity: generated scenes, and the real
Middlebury 2014 "Motorcycle" pair that scikit-image ships.

The generator renders a rectified pair of a piecewise-planar scene: a slanted
back wall, a ground plane and a few objects in front, each with its own
multi-scale texture. Disparities are exact (the right view is rendered from
the scene geometry, not warped from the left image), occlusions included.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class StereoPair:
    left: np.ndarray  # (H, W, 3) uint8
    right: np.ndarray  # (H, W, 3) uint8
    disparity: np.ndarray  # (H, W) float32, left-view pixels; NaN where unknown
    max_disparity: int
    name: str
    source: str


def _noise_texture(rng, height, width, scales=(3, 6, 12, 24, 48)):
    """Coloured multi-octave value noise, (height, width, 3) in [0, 1]."""
    tex = np.zeros((height, width, 3), np.float32)
    total = 0.0
    for scale in scales:
        gh, gw = height // scale + 2, width // scale + 2
        grid = rng.random((gh, gw, 3)).astype(np.float32)
        ys = np.arange(height) / scale
        xs = np.arange(width) / scale
        y0, x0 = ys.astype(int), xs.astype(int)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
        a = grid[y0][:, x0]
        b = grid[y0][:, x0 + 1]
        c = grid[y0 + 1][:, x0]
        d = grid[y0 + 1][:, x0 + 1]
        amplitude = scale**0.5
        tex += amplitude * ((a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy)
        total += amplitude
    tex /= total
    # Stretch contrast and tint: each surface gets its own colour.
    tex = (tex - tex.mean()) / (tex.std() + 1e-6) * 0.18 + 0.5
    tint = rng.uniform(0.6, 1.0, 3).astype(np.float32)
    return np.clip(tex * tint + rng.uniform(0, 0.3, 3), 0, 1)


def _sample_rows(tex, xs, pad):
    """Linear interpolation of texture rows at fractional x (per row)."""
    height, width = tex.shape[:2]
    x = np.clip(xs + pad, 0, width - 1.001)
    x0 = np.floor(x).astype(int)
    f = (x - x0)[..., None]
    rows = np.arange(height)[:, None]
    return tex[rows, x0] * (1 - f) + tex[rows, x0 + 1] * f


def covered(shape, x, y):
    """Where a surface of `shape` ("all", ("below", y0), ("rect" | "bar" |
    "ellipse", cx, cy, rx, ry), or ("lattice", period_x, bar_x, period_y,
    bar_y, x0, y0): bars `bar_*` px wide every `period_*` px, a period of 0
    for none, as a fence or a grille) covers the points (x, y)."""
    if shape[0] == "all":
        return np.ones_like(x, bool)
    if shape[0] == "below":
        return y >= shape[1]
    if shape[0] == "lattice":
        _, period_x, bar_x, period_y, bar_y, x0, y0 = shape
        hit = np.zeros_like(x, bool)
        if period_x:
            hit |= np.mod(x - x0, period_x) < bar_x
        if period_y:
            hit |= np.mod(y - y0, period_y) < bar_y
        return hit
    _, cx, cy, rx, ry = shape
    if shape[0] in ("rect", "bar"):
        return (np.abs(x - cx) <= rx) & (np.abs(y - cy) <= ry)
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1


def synthetic_pair(
    height=384, width=512, seed=0, max_disparity=None, noise=2.0, truth_out_of_view=False
) -> StereoPair:
    """A generated rectified pair with exact ground truth (see module doc).

    `truth_out_of_view=True` keeps the truth of the left band whose match
    falls outside the right image (x - d < 0), as Middlebury's ground truth
    does, so that a matcher is also scored there; by default it is unknown.
    """
    rng = np.random.default_rng(seed)
    dmax = max_disparity or max(16, width // 8)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    pad = int(dmax * 1.5) + 4
    # Each layer: disparity plane d = a + b * x + c * y (left coordinates),
    # a mask in left coordinates, and a texture in left coordinates.
    layers = []
    back = dmax * rng.uniform(0.08, 0.2)
    layers.append(dict(plane=(back, rng.uniform(-0.02, 0.02) * dmax / width, 0.0), shape=("all",)))
    horizon = height * rng.uniform(0.55, 0.7)
    layers.append(
        dict(
            plane=(
                back - dmax * 0.45 * horizon / (height - horizon),
                0.0,
                dmax * 0.45 / (height - horizon),
            ),
            shape=("below", horizon),
        )
    )
    for i in range(rng.integers(3, 6)):
        d = dmax * rng.uniform(0.3, 0.95)
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.15, 0.85) * height
        rx, ry = rng.uniform(0.06, 0.18) * width, rng.uniform(0.08, 0.25) * height
        kind = "ellipse" if i % 2 else "rect"
        layers.append(
            dict(
                plane=(d, rng.uniform(-0.05, 0.05) * dmax / width, 0.0),
                shape=(kind, cx, cy, rx, ry),
            )
        )
    layers.sort(key=lambda layer: layer["plane"][0] + layer["plane"][2] * height / 2)
    # The ground plane is far at the horizon and near at the bottom: keep it
    # behind the objects by sorting on its mean disparity above.

    left = np.zeros((height, width, 3), np.float32)
    right = np.zeros((height, width, 3), np.float32)
    gt_left = np.zeros((height, width), np.float32)
    depth_right = np.full((height, width), -np.inf, np.float32)
    for layer in layers:
        a, b, c = layer["plane"]
        tex = _noise_texture(rng, height, width + 2 * pad)
        disp = a + b * xs + c * ys
        mask = covered(layer["shape"], xs, ys)
        # Painter's order is not enough for the ground plane vs objects:
        # use a z-buffer on disparity (nearer = larger disparity wins).
        nearer = mask & (disp >= gt_left)
        left[nearer] = _sample_rows(tex, xs, pad)[nearer]
        gt_left[nearer] = disp[nearer]
        # Right view: the left x that lands on xr satisfies xr = x - d(x, y).
        xl = (xs + a + c * ys) / (1 - b)
        disp_r = a + b * xl + c * ys
        mask_r = covered(layer["shape"], xl, ys) & (disp_r >= depth_right)
        right[mask_r] = _sample_rows(tex, xl, pad)[mask_r]
        depth_right[mask_r] = disp_r[mask_r]
    # Mild photometric differences between the cameras, and sensor noise.
    right = right * rng.uniform(0.95, 1.0) + rng.uniform(-0.02, 0.02)
    left = np.clip(left * 255 + rng.normal(0, noise, left.shape), 0, 255).astype(np.uint8)
    right = np.clip(right * 255 + rng.normal(0, noise, right.shape), 0, 255).astype(np.uint8)
    gt = gt_left.copy()
    if not truth_out_of_view:  # unknown where the match falls outside the right image
        gt[xs - gt < 0] = np.nan
    return StereoPair(
        left,
        right,
        gt,
        int(np.ceil(np.nanmax(gt))) + 1,
        f"synthetic-{seed}",
        "generated by kerazoo.app.demos.stereo_data",
    )


def motorcycle() -> StereoPair:
    """Middlebury 2014 "Motorcycle" (quarter resolution, 500x741), as shipped
    by scikit-image (`skimage.data.stereo_motorcycle`); needs scikit-image."""
    from skimage import data

    left, right, disp = data.stereo_motorcycle()
    disp = disp.astype(np.float32)
    disp[~np.isfinite(disp)] = np.nan
    # Middlebury's calib.txt gives ndisp=280 at full resolution: 70 here.
    return StereoPair(
        left,
        right,
        disp,
        70,
        "middlebury2014-motorcycle",
        "Scharstein et al., GCPR 2014, via scikit-image",
    )
