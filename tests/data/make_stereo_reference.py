"""Writes tests/data/stereo_reference.npz (the fast network) and
stereo_reference_accurate.npz: a small generated pair and the map each
quality's shipped stereo weights give for it under TensorFlow. Run again
after the weights change; tests/stereo/test_matching.py checks every
backend against them.

    KERAS_BACKEND=tensorflow python tests/data/make_stereo_reference.py
"""

import os
from pathlib import Path

import keras
import numpy as np

from kerazoo.app.demos.stereo_data import synthetic_pair
from kerazoo.stereo import StereoMatcher

if __name__ == "__main__":
    assert keras.backend.backend() == "tensorflow", "make the reference under TensorFlow"
    pair = synthetic_pair(height=72, width=104, seed=31, max_disparity=16)
    for quality, name in (("fast", "stereo_reference"), ("accurate", "stereo_reference_accurate")):
        matcher = StereoMatcher(
            max_disparity=16, precision="float32", runtime="keras", quality=quality
        )
        result = matcher.compute(pair.left, pair.right)
        path = Path(__file__).parent / f"{name}.npz"
        np.savez_compressed(
            path,
            left=pair.left,
            right=pair.right,
            max_disparity=16,
            disparity=result.disparity,
        )
        print(f"{path.name} written;", os.path.getsize(path), "bytes")
