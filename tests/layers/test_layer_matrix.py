"""Every registered layer through kerazoo.testing.check_layer, at several
configurations (the registry drives the matrix: a layer without cases fails)."""

import keras
import pytest

import kerazoo
from kerazoo.layers import (
    CorrelationVolume,
    InceptionBlock,
    ResidualBlock,
    SiameseEncoder,
    StereoXception,
)
from kerazoo.testing import check_layer

from conftest import tiny_base

IMG = (2, 16, 16, 3)

# name -> list of (id, check_layer kwargs). Keyed by registry name so that a new
# layer without cases fails test_every_registered_layer_has_cases.
CASES = {
    "CorrelationVolume": [
        (
            "normalized",
            dict(
                init_kwargs={"max_disparity": 3},
                input_shape=[(2, 4, 10, 5)] * 2,
                expected_output_shape=(2, 4, 10, 4),
                expected_num_params=0,
                run_training=False,
            ),
        ),
        (
            "plain",
            dict(
                init_kwargs={"max_disparity": 1, "normalize": False},
                input_shape=[(1, 3, 6, 2)] * 2,
                expected_output_shape=(1, 3, 6, 2),
                expected_num_params=0,
                run_training=False,
            ),
        ),
    ],
    "PixelPhases": [
        (
            "even",
            dict(
                init_kwargs={"factor": 2},
                input_shape=(2, 8, 6, 3),
                expected_output_shape=(8, 4, 3, 3),
                expected_num_params=0,
                run_training=False,
            ),
        ),
        (
            "odd_factor3",
            dict(
                init_kwargs={"factor": 3},
                input_shape=(1, 7, 5, 2),
                expected_output_shape=(9, 3, 2, 2),
                expected_num_params=0,
                run_training=False,
            ),
        ),
    ],
    "MergePixelPhases": [
        (
            "crop_to_like",
            dict(
                init_kwargs={"factor": 2},
                input_shape=[(8, 3, 4, 5), (2, 5, 7, 1)],
                expected_output_shape=(2, 5, 7, 5),
                expected_num_params=0,
                run_training=False,
            ),
        ),
    ],
    "InceptionBlock": [
        (
            "chapter",
            dict(
                init_kwargs={"filters": 8},
                input_shape=IMG,
                expected_output_shape=(2, 8, 8, 32),
                expected_num_trainable_weights=14,
            ),
        ),
        (
            "per_branch_bn",
            dict(
                init_kwargs={"filters": (4, 6, 2, 8), "strides": 1, "use_batch_norm": True},
                input_shape=IMG,
                expected_output_shape=(2, 16, 16, 20),
                expected_num_trainable_weights=21,
                expected_num_non_trainable_weights=14,
            ),
        ),
        (
            "stride3_odd",
            dict(
                init_kwargs={"filters": 4, "strides": 3, "activation": "gelu"},
                input_shape=(1, 17, 11, 5),
                expected_output_shape=(1, 6, 4, 16),
            ),
        ),
    ],
    "ResidualBlock": [
        (
            "chapter_identity",
            dict(
                init_kwargs={},
                input_shape=(2, 8, 8, 16),
                expected_output_shape=(2, 8, 8, 16),
                expected_num_trainable_weights=6,
            ),
        ),
        (
            "projection_bn",
            dict(
                init_kwargs={"filters": 8, "strides": 2, "use_batch_norm": True},
                input_shape=IMG,
                expected_output_shape=(2, 8, 8, 8),
                expected_num_trainable_weights=12,
                expected_num_non_trainable_weights=8,
            ),
        ),
        (
            "preactivation",
            dict(
                init_kwargs={
                    "filters": 8,
                    "num_convs": 2,
                    "use_batch_norm": True,
                    "preactivation": True,
                },
                input_shape=IMG,
                expected_output_shape=(2, 16, 16, 8),
                expected_num_trainable_weights=7,
            ),
        ),
        (
            "rank1",
            dict(
                init_kwargs={"filters": 6, "rank": 1, "kernel_size": 5, "strides": 2},
                input_shape=(2, 21, 4),
                expected_output_shape=(2, 11, 6),
            ),
        ),
    ],
    "SiameseEncoder": [
        (
            "chapter_lstm_head",
            dict(
                init_kwargs=lambda: {
                    "encoder": keras.layers.LSTM(8),
                    "head": keras.layers.Dense(1, activation="sigmoid"),
                },
                input_shape=[(2, 5, 4), (2, 5, 4)],
                expected_output_shape=(2, 1),
                expected_num_params=4 * 8 * (4 + 8 + 1) + 17,
            ),
        ),
        (
            "default_encoder_concat",
            dict(init_kwargs={}, input_shape=[(2, 3, 6), (2, 3, 6)], expected_output_shape=(2, 64)),
        ),
        (
            "model_encoder_abs_diff",
            dict(
                init_kwargs=lambda: {
                    "encoder": keras.Sequential(
                        [keras.Input((6,)), keras.layers.Dense(5, activation="tanh")]
                    ),
                    "merge": "abs_diff",
                },
                input_shape=[(3, 6), (3, 6)],
                expected_output_shape=(3, 5),
                expected_num_trainable_weights=2,
            ),
        ),
        (
            "cosine",
            dict(
                init_kwargs=lambda: {"encoder": keras.layers.GRU(4), "merge": "cosine"},
                input_shape=[(2, 7, 3), (2, 7, 3)],
                expected_output_shape=(2, 1),
            ),
        ),
        # tanh: through a linear encoder the bias cancels in e1 - e2.
        (
            "euclidean",
            dict(
                init_kwargs=lambda: {
                    "encoder": keras.layers.Dense(3, "tanh"),
                    "merge": "euclidean",
                },
                input_shape=[(2, 4), (2, 4)],
                expected_output_shape=(2, 1),
            ),
        ),
        (
            "product",
            dict(
                init_kwargs=lambda: {"encoder": keras.layers.Dense(3), "merge": "product"},
                input_shape=[(2, 4), (2, 4)],
                expected_output_shape=(2, 3),
            ),
        ),
    ],
    "StereoXception": [
        (
            "custom_base_concat",
            dict(
                init_kwargs=lambda: {"base": tiny_base()},
                input_shape=[IMG, IMG],
                expected_output_shape=(2, 4, 4, 16),
                expected_num_trainable_weights=4,
            ),
        ),
        (
            "custom_base_levels_both",
            dict(
                init_kwargs=lambda: {
                    "base": tiny_base(),
                    "output_mode": "both",
                    "feature_layers": ["c1", "c2"],
                    "trainable_base": True,
                },
                input_shape=[IMG, IMG],
                expected_output_shape=[(2, 8, 8, 4), (2, 8, 8, 4), (2, 4, 4, 8), (2, 4, 4, 8)],
            ),
        ),
        (
            "xception_chapter",
            dict(
                init_kwargs={"input_shape": (71, 71, 3)},
                input_shape=[(1, 71, 71, 3)] * 2,
                expected_output_shape=(1, 3, 3, 4096),
                expected_num_params=20_861_480,
            ),
        ),
    ],
}


# The whole ImageNet Xception: minutes under JAX and torch, whose kernels the
# other StereoXception cases already cover; CI runs it under TensorFlow.
SLOW_CASES = {"StereoXception-xception_chapter"}


def _params():
    for name, cases in CASES.items():
        for case_id, kwargs in cases:
            case = f"{name}-{case_id}"
            yield pytest.param(
                name, kwargs, id=case, marks=[pytest.mark.slow] if case in SLOW_CASES else []
            )


@pytest.mark.parametrize("name,kwargs", list(_params()))
def test_check_layer(name, kwargs):
    report = check_layer(kerazoo.registry.get(name).target, **kwargs)
    assert report["saving"] == "equal outputs after reload"


# Layers whose check_layer cases need a fixture of their own.
COVERED_ELSEWHERE = {"HubLayer": "tests/layers/test_hub_layer.py"}


def test_every_registered_layer_has_cases():
    assert {e.name for e in kerazoo.list_entries("layer")} <= set(CASES) | set(COVERED_ELSEWHERE)


# Input checks: InputSpec for ranks (Keras's own message) and the layers'
# own checks for what InputSpec cannot say.
@pytest.mark.parametrize(
    "layer,inputs,as_list,match",
    [
        (lambda: SiameseEncoder(), [(None, 5, 4)], True, "expects a list of two inputs"),
        (
            lambda: SiameseEncoder(),
            [(None, 5, 4), (None, 5, 3)],
            True,
            "same rank and feature size",
        ),
        (
            lambda: StereoXception(base=tiny_base()),
            [(None, 8, 8, 3), (None, 9, 8, 3)],
            True,
            "same size",
        ),
        (
            lambda: StereoXception(base=tiny_base()),
            [(None, 8, 3), (None, 8, 3)],
            True,
            "expected ndim=4, found ndim=3",
        ),
        (
            lambda: CorrelationVolume(2),
            [(None, 8, 3), (None, 8, 3)],
            True,
            "expected ndim=4, found ndim=3",
        ),
        (lambda: ResidualBlock(rank=1), [(None, 8, 8, 3)], False, "expected ndim=3, found ndim=4"),
        (lambda: InceptionBlock(), [(None, 8, 3)], False, "expected ndim=4, found ndim=3"),
    ],
)
def test_bad_inputs_fail_before_running(layer, inputs, as_list, match):
    tensors = [keras.Input(s[1:]) for s in inputs]
    with pytest.raises(ValueError, match=match):
        layer()(tensors if as_list else tensors[0])


@pytest.mark.parametrize(
    "layer,shape,match",
    [
        (lambda: ResidualBlock(rank=1), (None, 8, 8, 3), "expects a 3D input"),
        (lambda: InceptionBlock(), (None, 8, 3), "expects a 4D input"),
    ],
)
def test_direct_build_checks_the_rank_too(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer().build(shape)


def test_built_layers_fix_their_channel_count():
    block = InceptionBlock(4, strides=1)
    block(keras.Input((8, 8, 3)))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        block(keras.Input((8, 8, 5)))
