"""The architecture: the library never imports the application, and
`import kerazoo` registers the layers whichever of kerazoo and Keras comes
first, while staying light itself."""

import subprocess
import sys
import textwrap

import pytest

from kerazoo import registry


def _run(code):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_import_kerazoo_is_light():
    assert (
        _run("""
        import sys, kerazoo
        print(sorted(m for m in ("keras", "tensorflow", "jax", "torch", "numpy")
                     if m in sys.modules))
    """)
        == "[]"
    )


@pytest.mark.parametrize("order", ["kerazoo first", "keras first"])
def test_layers_are_registered_in_either_import_order(order):
    first, second = ("kerazoo", "keras") if order == "kerazoo first" else ("keras", "kerazoo")
    assert (
        _run(f"""
        import {first}, {second}
        names = keras.saving.get_custom_objects()
        print(all(f"kerazoo>{{n}}" in names for n in
                  ("InceptionBlock", "ResidualBlock", "SiameseEncoder", "StereoXception",
                   "CorrelationVolume", "HubLayer")))
    """)
        == "True"
    )


@pytest.mark.slow
def test_the_library_never_imports_the_application(tmp_path):
    # Every library module, a model built, saved and loaded: no kerazoo.app.
    modules = ", ".join(
        f"kerazoo.{m}"
        for m in (
            "backbones",
            "distribute",
            "errors",
            "export",
            "features",
            "layers",
            "losses",
            "options",
            "registry",
            "stereo",
            "stereo.depth",
            "stereo.matcher",
            "stereo.matching",
            "stereo.stem",
            "testing",
            "weights",
        )
    )
    assert (
        _run(f"""
        import sys, importlib, keras, numpy as np
        for m in "{modules}".split(", "):
            importlib.import_module(m)
        import kerazoo
        x = keras.Input((8, 8, 3))
        model = keras.Model(x, kerazoo.layers.ResidualBlock(4)(x))
        model.save(r"{tmp_path / "m.keras"}")
        keras.saving.load_model(r"{tmp_path / "m.keras"}", safe_mode=True)
        kerazoo.list_entries()
        image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), np.uint8)
        kerazoo.stereo.StereoMatcher(max_disparity=8).compute(image, image)
        print(sorted(m for m in sys.modules if m.startswith("kerazoo.app")))
    """)
        == "[]"
    )


def test_registry_holds_layers_and_backbones_only():
    assert registry.KINDS == ("layer", "backbone")
    assert {e.kind for e in registry.list_entries()} == set(registry.KINDS)
