"""From disparity to depth, what stereo is for: the camera's calibration
(Middlebury's `calib.txt`), depth maps and coloured point clouds (PLY)."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np

from kerazoo.errors import InputError, ParameterError


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A rectified pair's geometry.

    Attributes:
        focal_px: the focal length, in pixels of the full-size images.
        baseline: the distance between the two cameras' centres; depths come
            out in its unit (Middlebury: mm).
        doffs: the x-difference of the two principal points, in pixels
            (`cx1 - cx0`; 0 when the images were rectified to share one).
        cx, cy: the left camera's principal point, in pixels (None: the
            image's centre).
    """

    focal_px: float
    baseline: float
    doffs: float = 0.0
    cx: float | None = None
    cy: float | None = None

    def __post_init__(self):
        for name in ("focal_px", "baseline"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ParameterError(name, f"must be a finite number > 0, received {value!r}")
        if not (isinstance(self.doffs, (int, float)) and math.isfinite(self.doffs)):
            raise ParameterError("doffs", f"must be a finite number, received {self.doffs!r}")


def read_middlebury_calibration(path) -> Calibration:
    """A Middlebury `calib.txt` (`cam0=[f 0 cx; 0 f cy; 0 0 1]`, `doffs=`,
    `baseline=`) as a `Calibration`."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(
            f"{path}: unreadable calibration ({getattr(e, 'strerror', e) or e})"
        ) from None
    fields = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise InputError(f"{path}, line {number}: expected NAME=VALUE, got {line.strip()!r}")
        fields[key.strip()] = (number, value.strip())
    for key in ("cam0", "baseline"):
        if key not in fields:
            raise InputError(
                f"{path}: no {key}= line (a Middlebury calib.txt has cam0, doffs and baseline)"
            )

    def number_of(key, text_value, line):
        try:
            value = float(text_value)
        except ValueError:
            raise InputError(
                f"{path}, line {line}: {key} is not a number: {text_value!r}"
            ) from None
        if not math.isfinite(value):
            raise InputError(f"{path}, line {line}: {key} is not finite: {text_value!r}")
        return value

    line, cam0 = fields["cam0"]
    entries = [e for e in re.split(r"[\s;\[\]]+", cam0) if e]
    if len(entries) != 9:
        raise InputError(f"{path}, line {line}: cam0 must be a 3x3 matrix, got {cam0!r}")
    matrix = [number_of("cam0", e, line) for e in entries]
    focal_px, cx, cy = matrix[0], matrix[2], matrix[5]
    baseline = number_of("baseline", fields["baseline"][1], fields["baseline"][0])
    doffs = number_of("doffs", fields["doffs"][1], fields["doffs"][0]) if "doffs" in fields else 0.0
    try:
        return Calibration(focal_px, baseline, doffs, cx, cy)
    except ParameterError as e:
        raise InputError(f"{path}: {e}") from None


def depth_from_disparity(disparity, focal_px, baseline, doffs=0.0, scale=1.0):
    """Depth `baseline * focal_px / (disparity / scale + doffs)` of each pixel.

    Args:
        disparity: a map (float, NaN where unknown), in its own pixels.
        focal_px, baseline, doffs: the calibration, in pixels of the
            full-size images (`Calibration`); the depth is in `baseline`'s unit.
        scale: the map's size over the full-size images' (below 1 for a map
            of downscaled images): its disparities are divided by it first.

    Returns:
        float32 depth, NaN where the disparity is unknown or not in front of
        the cameras (`disparity / scale + doffs <= 0`).
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ParameterError("scale", f"must be a finite number > 0, received {scale!r}")
    Calibration(focal_px, baseline, doffs)  # validates them
    full = np.asarray(disparity, np.float64) / scale + doffs
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(full > 0, baseline * focal_px / full, np.nan)
    return depth.astype(np.float32)


def point_cloud(disparity, image, calibration, scale=1.0):
    """The scene points of a disparity map, with their colours.

    Args:
        disparity: (h, w) in the map's pixels (see `depth_from_disparity`).
        image: the left view at the map's size, (h, w, 3), 0-255.
        calibration: a `Calibration` of the full-size images.
        scale: the map's size over the full-size images'.

    Returns:
        `(points, colors)`: float32 (n, 3) `X, Y, Z` (X right, Y down, Z
        forward, in the baseline's unit) and uint8 (n, 3) RGB, for the
        pixels with a depth.
    """
    height, width = disparity.shape
    image = np.asarray(image)
    if image.shape[:2] != (height, width) or image.ndim != 3 or image.shape[-1] < 3:
        raise ParameterError(
            "image",
            f"must be (h, w, 3) like the disparity {height}x{width}, received shape {image.shape}",
        )
    c = calibration
    depth = depth_from_disparity(disparity, c.focal_px, c.baseline, c.doffs, scale)
    cx = c.cx if c.cx is not None else (width / scale - 1) / 2
    cy = c.cy if c.cy is not None else (height / scale - 1) / 2
    ys, xs = np.nonzero(np.isfinite(depth))
    z = depth[ys, xs].astype(np.float64)
    # Pixel centres of the map, in pixels of the full-size images.
    u, v = (xs + 0.5) / scale - 0.5, (ys + 0.5) / scale - 0.5
    points = np.stack([(u - cx) * z / c.focal_px, (v - cy) * z / c.focal_px, z], axis=-1)
    colors = np.clip(image[ys, xs, :3], 0, 255).astype(np.uint8)
    return points.astype(np.float32), colors


_PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
)


def write_ply(path, points, colors):
    """Writes a coloured point cloud as binary little-endian PLY (what
    MeshLab, Open3D and CloudCompare read), atomically."""
    from kerazoo._io import atomic_write

    points, colors = np.asarray(points), np.asarray(colors)
    if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
        raise ParameterError(
            "points",
            f"must be (n, 3) with colors (n, 3), received {points.shape} and {colors.shape}",
        )
    vertices = np.empty(len(points), _PLY_VERTEX)
    for i, axis in enumerate("xyz"):
        vertices[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertices[channel] = colors[:, i]
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by kerazoo\n"
        f"element vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(header.encode("ascii"))
            f.write(vertices.tobytes())

    return atomic_write(path, write)
