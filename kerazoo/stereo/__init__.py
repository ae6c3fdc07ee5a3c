"""Stereo matching as a library: two rectified views in, disparity and
depth out.

    from kerazoo.stereo import StereoMatcher, depth_from_disparity

    result = StereoMatcher().compute(left, right)  # numpy arrays
    depth = depth_from_disparity(result.disparity, focal_px=3979.9, baseline=193.0,
                                 doffs=124.3)

`StereoMatcher` holds the settings and the network (ONE Xception stem shared
by both cameras, section 7.160); `kerazoo.stereo.matching` has the matching
steps on numpy arrays, `kerazoo.stereo.stem` the network (trained with
`kerazoo.losses.StereoMatchingLoss`), `kerazoo.stereo.onnx_features` the same
network run by ONNX Runtime without importing Keras (`StereoMatcher`'s
`runtime`), `kerazoo.stereo.depth` the geometry.
Names load on first use, so importing this package costs nothing until then.
"""

import importlib

_EXPORTS = {
    "depth": (
        "Calibration",
        "depth_from_disparity",
        "point_cloud",
        "read_middlebury_calibration",
        "write_ply",
    ),
    "_kernels": ("COMPILING",),
    "matcher": ("StereoMatcher", "StereoResult", "prepare_pair", "upsample_disparity"),
    "matching": (
        "bad_pixel_rate",
        "correlate_features",
        "densify",
        "fill_occlusions",
        "median3",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"kerazoo.stereo.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'kerazoo.stereo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_MODULE_OF))


__all__ = sorted(_MODULE_OF)
