"""The stereo demo's own model: the similarity of the two views, from the
same shared stem the matcher runs (section 7.160). The stem, the matching
model and their weights are the library's (`kerazoo.stereo.stem`)."""

from __future__ import annotations


def build_similarity_model(stem):
    """`[left, right]` (0-255 RGB) -> the cosine `(batch, 1)` of the two
    views' globally pooled `stem` features (one stem, shared)."""
    import keras

    from kerazoo.layers import StereoXception
    from kerazoo.stereo.stem import xception_preprocessing

    left = keras.Input((None, None, 3), name="left")
    right = keras.Input((None, None, 3), name="right")
    scale = xception_preprocessing()
    shared = StereoXception(
        base=stem, output_mode="both", trainable_base=False, name="shared_xception_pooled"
    )
    fl, fr = shared([scale(left), scale(right)])
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    score = keras.layers.Dot(axes=-1, normalize=True, name="similarity")([pool(fl), pool(fr)])
    return keras.Model([left, right], score, name="kerazoo_stereo_similarity")
