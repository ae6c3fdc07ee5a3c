"""The registry: layers and backbones, lookups and their errors."""

import pytest

import kerazoo
from kerazoo import registry
from kerazoo.layers import ResidualBlock


def test_registry_errors():
    with pytest.raises(ValueError, match="received: kind='model'"):
        registry.register("model")
    with pytest.raises(ValueError, match="received: kind='model'"):
        registry.list_entries("model")
    with pytest.raises(ValueError, match="received: kind='layer'"):
        registry.register("layer", weights=("imagenet",))
    with pytest.raises(ValueError, match="received: name='Nope'"):
        registry.get("Nope")
    with pytest.raises(ValueError, match="received: name='stereo'"):
        registry.create("stereo")  # a demo: the application's, not the registry's
    with pytest.raises(ValueError, match="Duplicate kerazoo registry name: 'InceptionBlock'"):
        registry.register("layer", name="InceptionBlock")(type("Other", (), {}))
    assert isinstance(kerazoo.create("ResidualBlock", filters=4), ResidualBlock)


def test_custom_objects_lists_every_registered_class():
    objects = kerazoo.custom_objects()
    for entry in kerazoo.list_entries("layer"):
        assert objects[f"kerazoo>{entry.name}"] is entry.target
        assert objects[entry.name] is entry.target
