"""kerazoo: reusable Keras 3 layers for models beyond Sequential.

`import kerazoo` registers every kerazoo layer and backbone with Keras, so a
saved `.keras` file that uses them loads with nothing else (`safe_mode=True`
included).

Layout: everything here but `kerazoo.app` is the library (layers, losses,
backbones, features, stereo, weights, registry, export, testing, distribute,
errors). `kerazoo.app` is the
application (the command line, the demos and their models); it imports the
library, and the library never imports it.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from kerazoo._version import __version__

_SUBMODULES = (
    "backbones",
    "distribute",
    "errors",
    "export",
    "features",
    "layers",
    "losses",
    "registry",
    "stereo",
    "testing",
    "weights",
)


def _register_with_keras():
    # Importing these modules runs their `register_keras_serializable`
    # decorators. Re-entrant: a module already being imported is left to finish.
    for module in ("kerazoo.layers", "kerazoo.backbones", "kerazoo.losses"):
        if module not in sys.modules:
            importlib.import_module(module)


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    """Registers kerazoo's classes as soon as Keras has been imported.

    Registration needs Keras, and importing Keras starts its backend
    (TensorFlow: seconds). Doing it right after Keras's own import keeps
    `import kerazoo` light (so `kerazoo --help` answers at once) while every
    process that can load a model, having imported Keras, has kerazoo's classes.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_keras = spec.loader.exec_module

        def exec_module(module):
            exec_keras(module)
            _register_with_keras()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_with_keras()
elif not any(isinstance(f, _RegisterAfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKerasImport())


def __getattr__(name):
    # Submodules load on first use: `kerazoo.layers.InceptionBlock` works
    # without importing anything heavy at `import kerazoo`.
    if name in _SUBMODULES:
        return importlib.import_module(f"kerazoo.{name}")
    if name in ("create", "list_entries", "custom_objects"):
        return getattr(importlib.import_module("kerazoo.registry"), name)
    raise AttributeError(f"module 'kerazoo' has no attribute {name!r}")


def __dir__():
    return sorted(
        list(globals()) + list(_SUBMODULES) + ["create", "list_entries", "custom_objects"]
    )


__all__ = ["__version__", *_SUBMODULES, "create", "list_entries", "custom_objects"]
