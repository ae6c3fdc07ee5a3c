"""HubLayer: a TF-Hub model (or any TF2 SavedModel) as a Keras 3 layer."""

from __future__ import annotations

import keras
from keras import layers, ops

from kerazoo.registry import register


def _in_safe_mode():
    """Whether Keras is deserializing in safe mode now (`load_model` and
    `deserialize_keras_object` set it; True unless the user turned it off)."""
    from keras.src.saving import serialization_lib  # Keras's own check, as Lambda's

    return bool(serialization_lib.in_safe_mode())


def _input_specs(fn):
    """(positional specs, keyword specs) of a restored function or signature."""
    concrete = getattr(fn, "concrete_functions", None)
    fn = concrete[0] if concrete else fn
    return getattr(fn, "structured_input_signature", ((), {}))


def _captured_variables(fn):
    """Variables a restored function uses (for SavedModels that do not list
    theirs as the Reusable SavedModel API asks)."""
    seen, out = set(), []
    for c in getattr(fn, "concrete_functions", None) or [fn]:
        for v in getattr(c, "variables", ()):
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    return out


@register("layer")
@keras.saving.register_keras_serializable(package="kerazoo")
class HubLayer(layers.Layer):
    """Calls a TF-Hub model or a local TF2 SavedModel inside a Keras 3 model.

    `tensorflow_hub.KerasLayer` is a tf-keras (Keras 2) layer, so Keras 3
    functional models reject it ("A KerasTensor cannot be used as input to a
    TensorFlow function", tensorflow/hub#903). This layer resolves the handle
    through `tensorflow_hub.load` and calls the module with Keras 3 semantics:
    it works in functional models, trains, and saves by handle (reloading a
    `.keras` file re-resolves the handle, then restores the saved values of
    the module's variables). TensorFlow backend only, by nature.

    A SavedModel's graph can run any TensorFlow operation, so a saved model
    holding a HubLayer loads only with `safe_mode=False` (or after
    `keras.config.enable_unsafe_deserialization()`), as Keras's `TFSMLayer`.

    Args:
        handle: a TF-Hub handle (URL, resolved through the TF-Hub cache) or
            the path of a local SavedModel directory.
        trainable: bool. Fine-tune the module's trainable variables.
        signature: optional signature name (e.g. `"serving_default"`) to call
            instead of the module's `__call__`.
        output_key: the output to return when the module returns a dict
            (required if that dict has more than one entry).
        output_shape: optional output shape without the batch axis; found by
            tracing the module when not given.
        **kwargs: base layer arguments (`name`, `dtype`).

    Input shape:
        Whatever the module accepts, e.g. `(batch, features)` or
        `(batch, height, width, 3)`.

    Output shape:
        The module's output (`output_key`'s entry for dict outputs).

    Example:

    ```python
    embed = kerazoo.layers.HubLayer(
        "https://tfhub.dev/google/nnlm-en-dim50/2", output_shape=(50,))
    text = keras.Input((), dtype="string")
    model = keras.Model(text, keras.layers.Dense(1)(embed(text)))
    ```
    (The test suite runs the same on a SavedModel it exports itself.)

    Reference:
        TF-Hub "Reusable SavedModels": https://www.tensorflow.org/hub/reusable_saved_models;
        lecture notes section 7.160 (models as layers).
    """

    def __init__(
        self, handle, trainable=False, signature=None, output_key=None, output_shape=None, **kwargs
    ):
        # Inputs are fed to the module in its own dtype, not autocast.
        kwargs.setdefault("autocast", False)
        super().__init__(trainable=trainable, **kwargs)
        if not isinstance(handle, str) or not handle:
            raise ValueError(f"`handle` must be a non-empty string, received: handle={handle!r}")
        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise ValueError(
                "HubLayer needs the TensorFlow backend (TF-Hub modules are TensorFlow "
                f"SavedModels), received: KERAS_BACKEND={backend!r}"
            )
        try:
            import tensorflow_hub as hub
        except ModuleNotFoundError as e:
            if e.name != "tensorflow_hub":
                raise ImportError(
                    f"tensorflow-hub is installed but cannot be imported: {e}; "
                    "pip install 'kerazoo[hub]' installs what it needs"
                ) from e
            raise ImportError("HubLayer needs tensorflow-hub: pip install 'kerazoo[hub]'") from None
        self.handle = handle
        self.signature = signature
        self.output_key = output_key
        self.output_shape = None if output_shape is None else tuple(output_shape)
        try:
            self._module = hub.load(handle)
        except Exception as e:
            raise ValueError(
                f"`handle` could not be loaded as a SavedModel, received: handle={handle!r} "
                f"({str(e).splitlines()[0][:200]})"
            ) from None
        if signature is not None:
            signatures = getattr(self._module, "signatures", {})
            if signature not in signatures:
                raise ValueError(
                    f"`signature` must be one of {sorted(signatures)}, received: "
                    f"signature={signature!r}"
                )
            self._fn = signatures[signature]
        else:
            if not callable(self._module):
                raise ValueError(
                    f"the SavedModel at {handle!r} is not callable; pass `signature`, one of "
                    f"{sorted(getattr(self._module, 'signatures', {}))}"
                )
            self._fn = self._module
        args, kw = _input_specs(self._fn if signature else self._module.__call__)
        self._input_name = next(iter(kw)) if signature and kw else None
        self._training_spec = (
            kw.get("training", args[1] if len(args) > 1 else None) if not signature else None
        )
        variables = getattr(self._module, "variables", None)
        if variables is None:  # not a Reusable SavedModel: what the function uses
            variables = _captured_variables(self._fn if signature else self._module.__call__)
        trainable_ids = {
            id(v)
            for v in getattr(
                self._module, "trainable_variables", [v for v in variables if v.trainable]
            )
        }
        # Wrapping (not copying) the module's tf.Variables: training and
        # .keras loading then act on the variables the module computes with.
        # `trainable=False` hides them from the optimizer via the layer's flag.
        self.module_weights = [
            keras.Variable(
                v,
                trainable=id(v) in trainable_ids,
                dtype=v.dtype.name,
                name=v.name.split(":")[0].replace("/", "_"),
            )
            for v in variables
        ]

    def call(self, inputs, training=None):
        import tensorflow as tf

        x = inputs
        if self.signature is not None:
            outputs = self._fn(**{self._input_name: x}) if self._input_name else self._fn(x)
        elif self._training_spec is not None:
            flag = bool(training) and self.trainable
            if isinstance(self._training_spec, tf.TensorSpec):
                flag = tf.constant(flag)
            outputs = self._fn(x, training=flag)
        else:
            outputs = self._fn(x)
        if isinstance(outputs, dict):
            if self.output_key is None and len(outputs) == 1:
                outputs = next(iter(outputs.values()))
            elif self.output_key in outputs:
                outputs = outputs[self.output_key]
            else:
                raise ValueError(
                    f"`output_key` must be one of {sorted(outputs)}, received: "
                    f"output_key={self.output_key!r}"
                )
        if keras.backend.is_float_dtype(outputs.dtype) and outputs.dtype != self.compute_dtype:
            outputs = ops.cast(outputs, self.compute_dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        if self.output_shape is not None:
            return (input_shape[0],) + self.output_shape
        # Trace the module once on a symbolic input to learn its output.
        spec = keras.Operation.compute_output_spec(
            self, keras.KerasTensor(input_shape, dtype=self._input_dtype())
        )
        return tuple(spec.shape)

    def _input_dtype(self):
        args, kw = _input_specs(self._fn if self.signature else self._module.__call__)
        specs = list(kw.values()) if self.signature else list(args[:1])
        return specs[0].dtype.name if specs and hasattr(specs[0], "dtype") else "float32"

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "signature": self.signature,
                "output_key": self.output_key,
                "output_shape": (None if self.output_shape is None else list(self.output_shape)),
            }
        )
        config.pop("autocast", None)
        return config

    @classmethod
    def from_config(cls, config):
        # Loading a HubLayer loads a SavedModel, whose graph can run any
        # TensorFlow op (write files, read the network): refused in safe
        # mode, as Keras refuses its own TFSMLayer.
        if _in_safe_mode():
            raise ValueError(
                f"Requested the deserialization of a `HubLayer` (handle "
                f"{config.get('handle')!r}), which loads an external SavedModel whose graph "
                "can run arbitrary operations. If you trust this file, load it with "
                "`safe_mode=False` or call `keras.config.enable_unsafe_deserialization()`."
            )
        return cls(**config)
