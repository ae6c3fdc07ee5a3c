"""Writes tests/data/stereo_reference.npz: a small generated pair and the map
the shipped stereo weights give for it under TensorFlow. Run again after the
weights change; tests/stereo/test_matcher.py checks every backend against it.

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
    result = StereoMatcher(max_disparity=16, precision="float32").compute(pair.left, pair.right)
    np.savez_compressed(
        Path(__file__).parent / "stereo_reference.npz",
        left=pair.left,
        right=pair.right,
        max_disparity=16,
        disparity=result.disparity,
    )
    print("written;", os.path.getsize(Path(__file__).parent / "stereo_reference.npz"), "bytes")
