"""The matcher's two networks (`quality`): the accurate stem starts as the
fast one and adds a residual block that sees further; folded, as ONNX and in
strips it computes what the Keras stem computes."""

import keras
import numpy as np
import pytest

from kerazoo.errors import ParameterError
from kerazoo.stereo import stem as stem_lib
from kerazoo.stereo.stem import (
    STEM_CONVOLUTIONS,
    copy_xception_weights,
    fold_batch_norm,
    halo_rows,
    load_stem,
    refine_convolutions,
    refine_dilations_of,
    xception_stem,
)

from conftest import set_batch_norm_statistics

# The shipped accurate network, and a candidate with a second, wider block.
REFINE_CASES = [(1,), (1, 2)]


def _trained_looking(stem, seed=0):
    """The refining blocks' scales included: not the identity they start as."""
    blocks = len(refine_dilations_of(stem))
    names = [bn for _, bn in STEM_CONVOLUTIONS + refine_convolutions(blocks)]
    return set_batch_norm_statistics(stem, names, seed, spread=0.3)


@pytest.fixture(scope="module", params=REFINE_CASES, ids=str)
def accurate(request):
    stem = xception_stem(quality="accurate", refine_dilations=request.param)
    return _trained_looking(copy_xception_weights(stem, load_stem("stereo")[0]))


def test_the_accurate_stem_starts_as_the_fast_one():
    fast = load_stem("stereo")[0]
    accurate = copy_xception_weights(xception_stem(quality="accurate"), fast)
    assert accurate.count_params() == 83_104 and fast.count_params() == 47_008
    assert stem_lib.stem_quality(accurate) == "accurate" and stem_lib.stem_quality(fast) == "fast"
    images = np.random.default_rng(0).uniform(-1, 1, (1, 36, 50, 3)).astype("float32")
    np.testing.assert_array_equal(
        np.asarray(accurate.predict_on_batch(images)), np.asarray(fast.predict_on_batch(images))
    )


def test_a_second_refining_block_starts_as_the_identity():
    """A wider candidate trains on from the shipped accurate network."""
    shipped = load_stem("stereo", "accurate")[0]
    wider, label = load_stem("stereo", "accurate", refine_dilations=[1, 2])
    assert label == "stereo-trained accurate" and refine_dilations_of(wider) == (1, 2)
    assert wider.count_params() == 119_200 and refine_dilations_of(shipped) == (1,)
    images = np.random.default_rng(0).uniform(-1, 1, (1, 36, 50, 3)).astype("float32")
    np.testing.assert_array_equal(
        np.asarray(wider.predict_on_batch(images)), np.asarray(shipped.predict_on_batch(images))
    )


@pytest.mark.parametrize("dilations", REFINE_CASES, ids=str)
@pytest.mark.parametrize("atrous", [True, False])
def test_folded_accurate_stem_gives_the_same_features(atrous, dilations):
    stem = copy_xception_weights(
        xception_stem(atrous=atrous, quality="accurate", refine_dilations=dilations),
        xception_stem(atrous=atrous),
    )
    _trained_looking(stem, seed=1)
    images = np.random.default_rng(2).uniform(-1, 1, (2, 40, 56, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(stem(images))
    folded = fold_batch_norm(stem)
    assert stem_lib.stem_quality(folded) == "accurate"
    assert refine_dilations_of(folded) == dilations
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
    dilations = refine_dilations_of(accurate)
    folded = fold_batch_norm(accurate, "float32")
    image = np.random.default_rng(3).uniform(0, 255, (96, 80, 3)).astype("float32")

    def features_of(rows, _):  # the strips' features, where the matcher correlates them
        return np.asarray(folded.predict_on_batch(rows[None] / 127.5 - 1.0))[0]

    whole = features_of(image, None)
    halo = halo_rows("accurate", dilations)
    assert halo == {(1,): 12, (1, 2): 20}[dilations] and halo_rows("fast") == 8
    assert halo_rows("accurate") == 12
    strips = stem_lib.correlate_in_strips(features_of, image, image, rows=16, halo_rows=halo)
    exact = np.abs(strips - whole).max()
    # The halo without the last block's reach misses some of what it sees.
    narrower = halo - 4 * dilations[-1]
    short = stem_lib.correlate_in_strips(features_of, image, image, rows=16, halo_rows=narrower)
    scale = np.abs(whole).max()
    assert exact < 1e-6 * scale < np.abs(short - whole).max() / 10


def test_quality_is_validated():
    with pytest.raises(ParameterError, match="`quality` must be one of 'fast', 'accurate'"):
        xception_stem(quality="slow")
    with pytest.raises(ParameterError, match="received 'slow'"):
        halo_rows("slow")


@pytest.mark.parametrize(
    "quality, dilations, message",
    [
        ("fast", (1,), r"`refine_dilations` must be .*, empty for 'fast', received \(1,\)"),
        ("accurate", (), r"at least one for 'accurate', received \(\)"),
        ("accurate", (1, 0), r"integers >= 1.*received \(1, 0\)"),
        ("accurate", "12", r"received '12'"),
        ("accurate", (1.0,), r"received \(1.0,\)"),
    ],
)
def test_refine_dilations_are_validated(quality, dilations, message):
    with pytest.raises(ParameterError, match=message):
        xception_stem(quality=quality, refine_dilations=dilations)


def test_the_matcher_runs_a_stem_it_is_given(accurate, monkeypatch):
    """A trained candidate is matched as it is, with the halo its blocks
    need (the strips' features differ without it: see the test above; their
    cosines hardly do, so the halo the matcher asks for is what is checked)."""
    from kerazoo.stereo import StereoMatcher

    left, right = np.random.default_rng(4).uniform(0, 255, (2, 160, 64, 3)).astype("float32")
    matcher = StereoMatcher(
        accurate, quality="accurate", max_disparity=8, precision="float32", check_swapped=False
    )
    assert matcher.runtime == "keras" and matcher.stem is accurate
    halos, in_strips = [], stem_lib.correlate_in_strips

    def recording(volume_of, left, right, **settings):
        halos.append(settings["halo_rows"])
        return in_strips(volume_of, left, right, **settings)

    monkeypatch.setattr(stem_lib, "correlate_in_strips", recording)
    volume = matcher.correlate(left, right, 8)
    halo = halo_rows("accurate", refine_dilations_of(accurate))
    assert halos == [halo]
    model = stem_lib.build_matching_model(8, stem=matcher.features)
    expected = in_strips(stem_lib.keras_volume_of(model), left, right, halo_rows=halo)
    np.testing.assert_allclose(volume, expected, atol=1e-5)
    with pytest.raises(
        ParameterError, match="`quality` must be the stem's, 'accurate', received 'fast'"
    ):
        StereoMatcher(accurate)
    strided = xception_stem(atrous=False, name="strided")
    with pytest.raises(ParameterError, match="xception_stem\\(atrous=True\\).*'strided'"):
        StereoMatcher(strided)
    with pytest.raises(ParameterError, match="with its BatchNormalization, received the model"):
        StereoMatcher(fold_batch_norm(accurate), quality="accurate")
