"""The stereo features without Keras: the shipped stem as an ONNX graph,
run by ONNX Runtime.

Importing Keras with TensorFlow takes longer than the matching itself
(`benchmarks/cold_start.py` measures both), so a command-line run that
needs only the shipped network's forward pass loads this graph instead. It
is the folded stem (`fold_batch_norm`) written as plain ONNX operators: the
atrous layers as convolutions dilated by 2, which compute what
`PixelPhases` computes, zero-padding an odd side to even first as it does.
`weights/stereo_xception_stem.onnx` is written from the shipped
`.weights.h5` by `write_features_onnx` and verified by its sha256 before
use, like every shipped file; `tests/stereo/test_runtimes.py` checks
it against the Keras stem.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kerazoo.errors import WeightsError

FEATURES_ONNX = "stereo_xception_stem_onnx"  # the manifest's name of the graph
# The graph of each quality's shipped stem (`kerazoo.stereo.stem.QUALITIES`).
FEATURES_ONNX_OF = {"fast": FEATURES_ONNX, "accurate": "stereo_xception_stem_accurate_onnx"}
OPSET = 17
_INPUT, _OUTPUT = "image", "features"


def _onnx_kernel(kernel):
    """Keras's (kh, kw, in, out) kernel as ONNX's (out, in, kh, kw)."""
    return np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)), np.float32)


def features_onnx_model(folded):
    """The ONNX graph of `folded` (an atrous stem of either quality from
    `fold_batch_norm`, in float32): `image` `(batch, h, w, 3)`, RGB 0-255,
    to `features` `(batch, h, w, 128)`. Needs the `onnx` package
    (`kerazoo[export]`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from kerazoo.stereo.stem import refine_block_name, refine_convolutions, refine_dilations_of

    nodes, initializers = [], []

    def constant(name, value):
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, inputs, name, **attributes):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def conv(x, layer, dilation, depthwise=False):
        name = layer.name
        weights = layer.get_weights()
        if depthwise:  # SeparableConv2D: (depthwise, pointwise, bias)
            channels = weights[0].shape[2]
            x = node(
                "Conv",
                [x, constant(f"{name}_dw", _onnx_kernel(weights[0]).reshape(channels, 1, 3, 3))],
                f"{name}_depthwise",
                group=channels,
                dilations=[dilation] * 2,
                pads=[dilation] * 4,
            )
            kernel, bias, size, pad = weights[1], weights[2], 1, 0
        else:
            kernel, bias, size, pad = weights[0], weights[1], 3, dilation
        return node(
            "Conv",
            [x, constant(f"{name}_kernel", _onnx_kernel(kernel)), constant(f"{name}_bias", bias)],
            name,
            kernel_shape=[size, size],
            dilations=[dilation] * 2 if size > 1 else [1, 1],
            pads=[pad] * 4,
        )

    # Xception's preprocessing, then channels first.
    x = node("Mul", [_INPUT, constant("scale", np.float32(1 / 127.5))], "scaled")
    x = node("Sub", [x, constant("one", np.float32(1.0))], "preprocessed")
    x = node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x = node("Relu", [conv(x, folded.get_layer("block1_conv1"), 1)], "block1_conv1_act")
    # PixelPhases pads an odd side to even with zeros before the dilated
    # layers, and MergePixelPhases crops back: the same here.
    size = node("Shape", [x], "size", start=2, end=4)
    odd = node("Mod", [size, constant("two", np.array([2, 2], np.int64))], "odd")
    pads = node("Concat", [constant("no_pad", np.zeros(6, np.int64)), odd], "pads", axis=0)
    x = node("Pad", [x, pads], "even")
    x = node("Relu", [conv(x, folded.get_layer("block1_conv2"), 2)], "block1_conv2_act")
    sep1 = conv(x, folded.get_layer("block2_sepconv1"), 2, depthwise=True)
    x = node("Relu", [sep1], "block2_sepconv2_act")
    x = conv(x, folded.get_layer("block2_sepconv2"), 2, depthwise=True)
    for block in range(len(refine_dilations_of(folded))):
        residual = x
        for conv_name, _ in refine_convolutions(block + 1)[-2:]:
            layer = folded.get_layer(conv_name)
            x = node("Relu", [x], f"{conv_name}_act")
            # Dilated on the pixel phases: twice that on the image.
            x = conv(x, layer, 2 * layer.dilation_rate[0], depthwise=True)
        x = node("Add", [residual, x], f"{refine_block_name(block)}_add")
    x = node(
        "Slice",
        [x, constant("starts", np.zeros(2, np.int64)), size, constant("axes", np.array([2, 3]))],
        "cropped",
    )
    node("Transpose", [x], _OUTPUT, perm=[0, 2, 3, 1])

    graph = helper.make_graph(
        nodes,
        "kerazoo_stereo_features",
        [helper.make_tensor_value_info(_INPUT, TensorProto.FLOAT, ["batch", "h", "w", 3])],
        [helper.make_tensor_value_info(_OUTPUT, TensorProto.FLOAT, ["batch", "h", "w", 128])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kerazoo"
    )
    model.ir_version = 8  # readable by every ONNX Runtime kerazoo supports
    onnx.checker.check_model(model)
    return model


def write_features_onnx(path, weights="stereo", quality="fast"):
    """Writes the ONNX graph of the `quality` stem with `weights` (as
    `load_stem`) to `path` (through a temporary file) and returns `path`."""
    from kerazoo._io import atomic_write
    from kerazoo.stereo.stem import fold_batch_norm, load_stem

    folded = fold_batch_norm(load_stem(weights, quality)[0], "float32")
    data = features_onnx_model(folded).SerializeToString()
    atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data), suffix=".onnx")
    return Path(path)


def onnxruntime_available():
    """Whether ONNX Runtime can be imported here."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class OnnxFeatures:
    """The shipped stem's features by ONNX Runtime: `features(images)` maps
    `(batch, h, w, 3)` float32 RGB 0-255 to `(batch, h, w, 128)`.

    Args:
        path: the graph; None: the shipped one of `quality`, found and
            sha256-verified as every shipped file (`kerazoo.weights.resolve`).
        threads: ONNX Runtime's threads (None: one per CPU core).
        quality: `"fast"` or `"accurate"`: whose shipped graph (without `path`).
    """

    def __init__(self, path=None, threads=None, quality="fast"):
        from kerazoo import weights

        try:
            import onnxruntime
        except ImportError as e:
            raise WeightsError(
                "ONNX Runtime is not installed (pip install onnxruntime): use runtime='keras'"
            ) from e
        self.path = (
            Path(path) if path else weights.resolve(FEATURES_ONNX_OF[quality], download=False)
        )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # ONNX Runtime raises its own classes for bad files
            raise WeightsError(f"{self.path}: not a usable ONNX graph ({e})") from None

    def __call__(self, images):
        images = np.ascontiguousarray(images, np.float32)
        return self.session.run([_OUTPUT], {_INPUT: images})[0]
