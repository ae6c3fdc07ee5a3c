"""InceptionBlock (7.140): the chapter's input, branches that cannot line
up, argument errors."""

import keras
import numpy as np
import pytest

from kerazoo.layers import InceptionBlock


def test_inception_on_the_chapter_input():
    x = np.zeros((10, 128, 128, 3), "float32")
    y = InceptionBlock(128, strides=2)(x)
    # Four 128-filter branches at half resolution.
    assert tuple(y.shape) == (10, 64, 64, 4 * 128)


@pytest.mark.parametrize("kwargs,match", [
    ({"filters": 0}, "received: filters=0"),
    ({"filters": (1, 2, 3)}, r"received: filters=\(1, 2, 3\)"),
    ({"strides": 0}, "received: strides=0"),
    ({"padding": "full"}, "received: padding='full'"),
    ({"activation": "nope"}, "received: activation='nope'"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InceptionBlock(**kwargs)


def test_inception_branches_that_do_not_line_up_fail_at_build():
    # The chapter's snippet as printed (default 'valid' padding) cannot concatenate.
    block = InceptionBlock(128, strides=2, padding="valid")
    with pytest.raises(ValueError, match=r"branch a: 64x64, branch b: 63x63, branch c: 61x61, "
                                         r"branch d: 62x62\); use padding='same'"):
        block(keras.Input((128, 128, 3)))


def test_inception_needs_known_channels_and_room_for_its_kernels():
    with pytest.raises(ValueError, match="needs a known channel count"):
        InceptionBlock(4).build((None, 8, 8, None))
    with pytest.raises(ValueError, match="too small for its 3x3 kernels"):
        InceptionBlock(4, strides=1, padding="valid").build((None, 3, 3, 2))
