"""Every kerazoo layer through kerazoo.testing.check_layer, at several configurations."""

import keras
import numpy as np
import pytest
from conftest import tiny_base

import kerazoo
from kerazoo.layers import (CorrelationVolume, InceptionBlock, ResidualBlock, SiameseEncoder,
                            StereoXception)
from kerazoo.testing import check_layer

IMG = (2, 16, 16, 3)

# name -> list of (id, check_layer kwargs). Keyed by registry name so that a new
# layer without cases fails test_every_registered_layer_has_cases.
CASES = {
    "CorrelationVolume": [
        ("normalized", dict(init_kwargs={"max_disparity": 3}, input_shape=[(2, 4, 10, 5)] * 2,
                            expected_output_shape=(2, 4, 10, 4), expected_num_params=0,
                            run_training=False)),
        ("plain", dict(init_kwargs={"max_disparity": 1, "normalize": False},
                       input_shape=[(1, 3, 6, 2)] * 2, expected_output_shape=(1, 3, 6, 2),
                       expected_num_params=0, run_training=False)),
    ],
    "InceptionBlock": [
        ("chapter", dict(init_kwargs={"filters": 8}, input_shape=IMG,
                         expected_output_shape=(2, 8, 8, 32),
                         expected_num_trainable_weights=14)),
        ("per_branch_bn", dict(init_kwargs={"filters": (4, 6, 2, 8), "strides": 1,
                                            "use_batch_norm": True},
                               input_shape=IMG, expected_output_shape=(2, 16, 16, 20),
                               expected_num_trainable_weights=21,
                               expected_num_non_trainable_weights=14)),
        ("stride3_odd", dict(init_kwargs={"filters": 4, "strides": 3, "activation": "gelu"},
                             input_shape=(1, 17, 11, 5), expected_output_shape=(1, 6, 4, 16))),
    ],
    "ResidualBlock": [
        ("chapter_identity", dict(init_kwargs={}, input_shape=(2, 8, 8, 16),
                                  expected_output_shape=(2, 8, 8, 16),
                                  expected_num_trainable_weights=6)),
        ("projection_bn", dict(init_kwargs={"filters": 8, "strides": 2, "use_batch_norm": True},
                               input_shape=IMG, expected_output_shape=(2, 8, 8, 8),
                               expected_num_trainable_weights=12,
                               expected_num_non_trainable_weights=8)),
        ("preactivation", dict(init_kwargs={"filters": 8, "num_convs": 2, "use_batch_norm": True,
                                            "preactivation": True},
                               input_shape=IMG, expected_output_shape=(2, 16, 16, 8),
                               expected_num_trainable_weights=7)),
        ("rank1", dict(init_kwargs={"filters": 6, "rank": 1, "kernel_size": 5, "strides": 2},
                       input_shape=(2, 21, 4), expected_output_shape=(2, 11, 6))),
    ],
    "SiameseEncoder": [
        ("chapter_lstm_head", dict(
            init_kwargs=lambda: {"encoder": keras.layers.LSTM(8),
                                 "head": keras.layers.Dense(1, activation="sigmoid")},
            input_shape=[(2, 5, 4), (2, 5, 4)], expected_output_shape=(2, 1),
            expected_num_params=4 * 8 * (4 + 8 + 1) + 17)),
        ("default_encoder_concat", dict(init_kwargs={}, input_shape=[(2, 3, 6), (2, 3, 6)],
                                        expected_output_shape=(2, 64))),
        ("model_encoder_abs_diff", dict(
            init_kwargs=lambda: {"encoder": keras.Sequential(
                [keras.Input((6,)), keras.layers.Dense(5, activation="tanh")]),
                "merge": "abs_diff"},
            input_shape=[(3, 6), (3, 6)], expected_output_shape=(3, 5),
            expected_num_trainable_weights=2)),
        ("cosine", dict(init_kwargs=lambda: {"encoder": keras.layers.GRU(4), "merge": "cosine"},
                        input_shape=[(2, 7, 3), (2, 7, 3)], expected_output_shape=(2, 1))),
        ("product", dict(init_kwargs=lambda: {"encoder": keras.layers.Dense(3),
                                              "merge": "product"},
                         input_shape=[(2, 4), (2, 4)], expected_output_shape=(2, 3))),
    ],
    "StereoXception": [
        ("custom_base_concat", dict(init_kwargs=lambda: {"base": tiny_base()},
                                    input_shape=[IMG, IMG], expected_output_shape=(2, 4, 4, 16),
                                    expected_num_trainable_weights=4)),
        ("custom_base_levels_both", dict(
            init_kwargs=lambda: {"base": tiny_base(), "output": "both",
                                 "feature_layers": ["c1", "c2"], "trainable_base": True},
            input_shape=[IMG, IMG],
            expected_output_shape=[(2, 8, 8, 4), (2, 8, 8, 4), (2, 4, 4, 8), (2, 4, 4, 8)])),
        ("xception_chapter", dict(init_kwargs={"input_shape": (71, 71, 3)},
                                  input_shape=[(1, 71, 71, 3)] * 2,
                                  expected_output_shape=(1, 3, 3, 4096),
                                  expected_num_params=20_861_480)),
    ],
}


def _params():
    for name, cases in CASES.items():
        for case_id, kwargs in cases:
            yield pytest.param(name, kwargs, id=f"{name}-{case_id}")


@pytest.mark.parametrize("name,kwargs", list(_params()))
def test_check_layer(name, kwargs):
    report = check_layer(kerazoo.registry.get(name).target, **kwargs)
    assert report["saving"] == "equal outputs after reload"


# Layers whose check_layer cases need a fixture of their own.
COVERED_ELSEWHERE = {"HubLayer": "tests/test_hub.py"}


def test_every_registered_layer_has_cases():
    assert {e.name for e in kerazoo.list_entries("layer")} <= set(CASES) | set(COVERED_ELSEWHERE)


def test_frozen_base_has_no_trainable_weights():
    stereo = StereoXception(base=tiny_base(), trainable_base=False)
    stereo([np.zeros(IMG, "float32")] * 2)
    assert stereo.trainable_weights == [] and len(stereo.non_trainable_weights) == 4


BAD_ARGS = [
    (CorrelationVolume, {"max_disparity": 0}, "received: max_disparity=0"),
    (InceptionBlock, {"filters": 0}, "received: filters=0"),
    (InceptionBlock, {"filters": (1, 2, 3)}, r"received: filters=\(1, 2, 3\)"),
    (InceptionBlock, {"strides": 0}, "received: strides=0"),
    (InceptionBlock, {"padding": "full"}, "received: padding='full'"),
    (InceptionBlock, {"activation": "nope"}, "received: activation='nope'"),
    (ResidualBlock, {"filters": -4}, "received: filters=-4"),
    (ResidualBlock, {"kernel_size": 0}, "received: kernel_size=0"),
    (ResidualBlock, {"num_convs": 1.5}, "received: num_convs=1.5"),
    (ResidualBlock, {"strides": True}, "received: strides=True"),
    (ResidualBlock, {"rank": 3}, "received: rank=3"),
    (ResidualBlock, {"activation": 7}, "received: activation=7"),
    (SiameseEncoder, {"merge": "sum"}, "received: merge='sum'"),
    (SiameseEncoder, {"encoder": "lstm"}, "received: encoder='lstm'"),
    (SiameseEncoder, {"head": 3}, "received: head=3"),
    (StereoXception, {"output": "stack"}, "received: output='stack'"),
    (StereoXception, {"levels": 3}, "received: levels=3"),
    (StereoXception, {"levels": []}, r"received: levels=\[\]"),
    (StereoXception, {"levels": [4, 4]}, r"received: levels=\[4, 4\]"),
    (StereoXception, {"input_shape": (64, 64, 1)}, r"received: input_shape=\(64, 64, 1\)"),
    (StereoXception, {"base": "xception"}, "received: base='xception'"),
]


@pytest.mark.parametrize("cls,kwargs,match", BAD_ARGS,
                         ids=[f"{c.__name__}-{next(iter(k))}-{i}" for i, (c, k, _) in enumerate(BAD_ARGS)])
def test_bad_arguments_raise_value_error(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_stereo_custom_base_argument_errors():
    with pytest.raises(ValueError, match="received: weights='w.h5'"):
        StereoXception(base=tiny_base(), weights="w.h5")
    with pytest.raises(ValueError, match="received: levels=8"):
        StereoXception(base=tiny_base(), levels=8)
    with pytest.raises(ValueError, match=r"not found: \['nope'\]"):
        StereoXception(base=tiny_base(), feature_layers=["c1", "nope"])


def test_inception_branches_that_do_not_line_up_fail_at_build():
    # The chapter's snippet as printed (default 'valid' padding) cannot concatenate.
    block = InceptionBlock(128, strides=2, padding="valid")
    with pytest.raises(ValueError, match=r"branch a: 64x64, branch b: 63x63, branch c: 61x61, "
                                         r"branch d: 62x62\); use padding='same'"):
        block(keras.Input((128, 128, 3)))


@pytest.mark.parametrize("layer,inputs,match", [
    (lambda: SiameseEncoder(), [(None, 5, 4)], "expects a list of two inputs"),
    (lambda: SiameseEncoder(), [(None, 5, 4), (None, 5, 3)], "same rank and feature size"),
    (lambda: StereoXception(base=tiny_base()), [(None, 8, 8, 3), (None, 9, 8, 3)],
     "same size"),
    (lambda: ResidualBlock(rank=1), [(None, 8, 8, 3)], r"expects a 3D input"),
    (lambda: InceptionBlock(), [(None, 8, 3)], "expects a 4D input"),
])
def test_bad_inputs_fail_at_build(layer, inputs, match):
    tensors = [keras.Input(s[1:]) for s in inputs]
    with pytest.raises(ValueError, match=match):
        layer()(tensors if len(tensors) > 1 or "Siamese" in match or "two" in match
                else tensors[0])


def test_inception_needs_known_channels_and_room_for_its_kernels():
    with pytest.raises(ValueError, match="needs a known channel count"):
        InceptionBlock(4).build((None, 8, 8, None))
    with pytest.raises(ValueError, match="too small for its 3x3 kernels"):
        InceptionBlock(4, strides=1, padding="valid").build((None, 3, 3, 2))


def test_registry_errors():
    from kerazoo import registry

    with pytest.raises(ValueError, match="received: kind='model'"):
        registry.register("model")
    with pytest.raises(ValueError, match="received: kind='model'"):
        registry.list_entries("model")
    with pytest.raises(ValueError, match="Unknown kerazoo name 'Nope'. Known: .*InceptionBlock"):
        registry.get("Nope")
    with pytest.raises(ValueError, match="'stereo' is a demo; run it with `kerazoo demo stereo`"):
        registry.create("stereo")
    with pytest.raises(ValueError, match="Duplicate kerazoo registry name: 'InceptionBlock'"):
        registry.register("layer", name="InceptionBlock")(type("Other", (), {}))
    assert isinstance(kerazoo.create("ResidualBlock", filters=4), ResidualBlock)
