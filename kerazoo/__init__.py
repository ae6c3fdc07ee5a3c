"""kerazoo: reusable Keras 3 layers for models beyond Sequential.

Importing kerazoo registers every kerazoo layer with Keras, so a saved
`.keras` file that uses them loads with nothing but `import kerazoo`.
"""

from kerazoo._version import __version__
from kerazoo import backbones, demos, distribute, layers, weights
from kerazoo.registry import create, list_entries


def custom_objects() -> dict:
    """Every registered kerazoo class, keyed by its registered and plain names.

    For APIs that still take `custom_objects=` (legacy `.h5`,
    `keras.models.model_from_json`).
    """
    import keras

    objects = {}
    for entry in list_entries():
        target = entry.target
        if isinstance(target, type):
            objects[target.__name__] = target
            objects[keras.saving.get_registered_name(target)] = target
    return objects


__all__ = ["__version__", "backbones", "demos", "distribute", "layers", "weights", "create",
           "list_entries", "custom_objects"]
