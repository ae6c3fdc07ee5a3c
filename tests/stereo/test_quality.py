"""The matcher's two networks (`quality`): the accurate stem starts as the
fast one and adds a residual block that sees further; folded, as ONNX and in
strips it computes what the Keras stem computes."""

import keras
import numpy as np
import pytest

from kerazoo.errors import ParameterError
from kerazoo.stereo import stem as stem_lib
from kerazoo.stereo.stem import (
    REFINE_CONVOLUTIONS,
    STEM_CONVOLUTIONS,
    copy_xception_weights,
    fold_batch_norm,
    halo_rows,
    load_stem,
    xception_stem,
)

from conftest import set_batch_norm_statistics


def _trained_looking(stem, seed=0):
    """The refining block's scale included: not the identity it starts as."""
    names = [bn for _, bn in STEM_CONVOLUTIONS + REFINE_CONVOLUTIONS]
    return set_batch_norm_statistics(stem, names, seed, spread=0.3)


@pytest.fixture(scope="module")
def accurate():
    stem = copy_xception_weights(xception_stem(quality="accurate"), load_stem("stereo")[0])
    return _trained_looking(stem)


def test_the_accurate_stem_starts_as_the_fast_one():
    fast = load_stem("stereo")[0]
    accurate = copy_xception_weights(xception_stem(quality="accurate"), fast)
    assert accurate.count_params() == 83_104 and fast.count_params() == 47_008
    assert stem_lib.stem_quality(accurate) == "accurate" and stem_lib.stem_quality(fast) == "fast"
    images = np.random.default_rng(0).uniform(-1, 1, (1, 36, 50, 3)).astype("float32")
    np.testing.assert_array_equal(
        np.asarray(accurate.predict_on_batch(images)), np.asarray(fast.predict_on_batch(images))
    )


@pytest.mark.parametrize("atrous", [True, False])
def test_folded_accurate_stem_gives_the_same_features(atrous):
    stem = copy_xception_weights(
        xception_stem(atrous=atrous, quality="accurate"), xception_stem(atrous=atrous)
    )
    _trained_looking(stem, seed=1)
    images = np.random.default_rng(2).uniform(-1, 1, (2, 40, 56, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(stem(images))
    folded = fold_batch_norm(stem)
    assert stem_lib.stem_quality(folded) == "accurate"
    got = keras.ops.convert_to_numpy(folded(images))
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("shape", [(1, 48, 70, 3), (1, 33, 41, 3)])
def test_the_accurate_graph_computes_the_keras_features(accurate, shape, tmp_path):
    """Odd sides included, and the refining block's dilation."""
    pytest.importorskip("onnx")
    from kerazoo.stereo.onnx_features import OnnxFeatures, features_onnx_model

    folded = fold_batch_norm(accurate, "float32")
    path = tmp_path / "accurate.onnx"
    path.write_bytes(features_onnx_model(folded).SerializeToString())
    images = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    want = np.asarray(folded.predict_on_batch(images / 127.5 - 1.0))
    np.testing.assert_allclose(OnnxFeatures(path)(images), want, atol=1e-4)


def test_strips_of_the_accurate_stem_need_its_wider_halo(accurate):
    folded = fold_batch_norm(accurate, "float32")
    image = np.random.default_rng(3).uniform(0, 255, (96, 80, 3)).astype("float32")

    def features_of(rows, _):  # the strips' features, where the matcher correlates them
        return np.asarray(folded.predict_on_batch(rows[None] / 127.5 - 1.0))[0]

    whole = features_of(image, None)
    halo = halo_rows("accurate")
    assert halo == 12 and halo_rows("fast") == 8
    strips = stem_lib.correlate_in_strips(features_of, image, image, rows=16, halo_rows=halo)
    exact = np.abs(strips - whole).max()
    # The fast stem's halo is too narrow for what the accurate one sees.
    short = stem_lib.correlate_in_strips(features_of, image, image, rows=16, halo_rows=8)
    scale = np.abs(whole).max()
    assert exact < 1e-6 * scale < np.abs(short - whole).max() / 10


def test_quality_is_validated():
    with pytest.raises(ParameterError, match="`quality` must be one of 'fast', 'accurate'"):
        xception_stem(quality="slow")
    with pytest.raises(ParameterError, match="received 'slow'"):
        halo_rows("slow")
