"""A writer of the old keras-applications HDF5 layout, for tests that need
weight files shaped like the ImageNet downloads (which cannot be fetched
here). The library only reads this layout."""

import h5py
import keras
import numpy as np

from kerazoo._io import atomic_write

LEGACY_KERAS_VERSION = "2.1.6"  # what the keras-applications files record


def write_keras_applications_h5(model, path):
    """Saves `model`'s weights in the layout of the keras-applications files
    (one HDF5 group per layer, loadable by `model.load_weights(path)`),
    through a temporary file."""

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
            f.attrs["backend"] = keras.backend.backend().encode()
            f.attrs["keras_version"] = LEGACY_KERAS_VERSION.encode()
            for layer in model.layers:
                g = f.create_group(layer.name)
                weights = layer.trainable_weights + layer.non_trainable_weights
                names = [f"{layer.name}/{w.name}:0" for w in weights]
                g.attrs["weight_names"] = [n.encode() for n in names]
                for n, w in zip(names, weights):
                    g.create_dataset(n, data=np.asarray(keras.ops.convert_to_numpy(w)))

    return atomic_write(path, write, suffix=".h5")
