"""TwoViewLayer: the base of kerazoo's layers that apply ONE model to two inputs."""

from __future__ import annotations

from keras import layers


class TwoViewLayer(layers.Layer):
    """Applies one shared model to a `[left, right]` pair of inputs.

    Sections 7.150-7.160: one layer (or a whole model) called on two inputs
    keeps one set of weights, which learns from both. Two kerazoo layers
    specialise this base; pick by what you want out:

    - `SiameseEncoder` compares: each input becomes one encoding (an LSTM, a
      dense stack, any layer), the two encodings are merged (`concat`,
      `abs_diff`, `product`, `cosine`) into one comparison, optionally scored
      by a head. Use it for "are these two the same?".
    - `StereoXception` extracts: each image becomes spatial feature maps of a
      convolutional base (Xception by default) at one or several strides,
      returned side by side for a later stage (e.g. `CorrelationVolume`).
      Use it to feed a matching stage.

    Subclasses name the attribute holding the shared model in
    `shared_attribute` (it is also where a `.keras` file stores its weights,
    so it never changes) and call `encode_pair`.
    """

    shared_attribute = "encoder"

    def encode_pair(self, inputs, training=None):
        """`(shared(left), shared(right))`: the same model object on both."""
        left, right = inputs
        shared = getattr(self, self.shared_attribute)
        return shared(left, training=training), shared(right, training=training)
