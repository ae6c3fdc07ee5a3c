"""Writes tests/data/stereo_reference.npz: a small generated pair and the map
the shipped stereo weights give for it under TensorFlow. Run again after the
weights change; tests/app/test_stereo_matching.py checks every backend
against it.

    KERAS_BACKEND=tensorflow python tests/data/make_stereo_reference.py
"""

import os
from pathlib import Path

import keras
import numpy as np

from kerazoo.app.demos import stereo
from kerazoo.app.demos.stereo_data import synthetic_pair
from kerazoo.app.models.stereo import build_matching_model

if __name__ == "__main__":
    assert keras.backend.backend() == "tensorflow", "make the reference under TensorFlow"
    pair = synthetic_pair(height=72, width=104, seed=31, max_disparity=16)
    stem, _ = stereo.stereo_stem("stereo")
    model = build_matching_model(16, stem=stem)
    volume = keras.ops.convert_to_numpy(
        model([pair.left[None].astype("float32"), pair.right[None].astype("float32")]))[0]
    disparity, _ = stereo.disparity_from_cost(volume, guide=pair.left.mean(axis=-1),
                                              image=pair.left,
                                              right_guide=pair.right.mean(axis=-1))
    np.savez_compressed(Path(__file__).parent / "stereo_reference.npz", left=pair.left,
                        right=pair.right, max_disparity=16, disparity=disparity)
    print("written;", os.path.getsize(Path(__file__).parent / "stereo_reference.npz"), "bytes")
