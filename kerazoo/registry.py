"""One registry of what kerazoo offers to models: layers and backbones.

It drives `kerazoo list`, `kerazoo.create` and the test matrix, so a new entry
shows up everywhere at once (the timm / kimm pattern). A backbone entry
carries its pretrained weights (`PretrainedWeights`: the manifest files that
hold them, and the preprocessing they expect), as kimm's `available_weights`
and timm's pretrained configs do. The demos are the application's business:
`kerazoo.app.cli` keeps its own table of them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

KINDS = ("layer", "backbone")


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """One set of pretrained weights of a backbone.

    Attributes:
        name: what callers pass as `weights=` (e.g. `"imagenet"`).
        top: manifest name of the file with the classifier (`include_top=True`),
            or None for a network without one.
        notop: manifest name of the file without it.
        preprocessing: what the weights expect of an input image.
    """

    name: str
    top: str | None
    notop: str
    preprocessing: str

    def file_for(self, include_top: bool) -> str:
        return self.top if include_top else self.notop

    def as_dict(self) -> dict:
        """The files, each with its hash and `availability`: `shipped` (in
        kerazoo's package), `on this machine` (found in a searched folder) or
        `download` (fetched on first use, or `kerazoo weights fetch`)."""
        from kerazoo import weights

        files = {}
        for variant, manifest_name in (("top", self.top), ("notop", self.notop)):
            if manifest_name is None:
                continue
            info = weights.entry(manifest_name)
            found = weights.find(manifest_name)
            if found is not None and found[0] == "package":
                availability = "shipped"
            elif found is not None:
                availability = "on this machine"
            else:
                availability = "download" if info.get("url") else "missing"
            files[variant] = {
                "manifest_name": manifest_name,
                "file": info["file"],
                "hash": info["hash"],
                "hash_algorithm": info["hash_algorithm"],
                "approx_size_mb": info.get("approx_size_mb"),
                "availability": availability,
            }
        return {"name": self.name, "preprocessing": self.preprocessing, "files": files}


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    summary: str
    target: Any  # the layer class or the backbone's builder function
    weights: tuple = ()  # PretrainedWeights, backbones only
    pyramid: bool = False  # a strided backbone: `kerazoo.features` finds its five levels

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "summary": self.summary,
            "weights": [w.as_dict() for w in self.weights],
            "pyramid": self.pyramid,
        }


_REGISTRY: dict[str, Entry] = {}


def register(kind: str, name: str | None = None, weights=(), pyramid=None) -> Callable:
    """Class / function decorator adding the target to the registry.

    The summary is the first line of the target's docstring. `pyramid`
    (backbones; default True for them) says that the backbone downsamples in
    five levels that `kerazoo.features` can tap.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, received: kind={kind!r}")
    if weights and kind != "backbone":
        raise ValueError(f"only backbones carry pretrained weights, received: kind={kind!r}")

    def decorator(target):
        entry_name = name or target.__name__
        if entry_name in _REGISTRY and _REGISTRY[entry_name].target is not target:
            raise ValueError(f"Duplicate kerazoo registry name: {entry_name!r}")
        summary = (target.__doc__ or "").strip().splitlines()[0] if target.__doc__ else ""
        has_pyramid = (kind == "backbone") if pyramid is None else bool(pyramid)
        _REGISTRY[entry_name] = Entry(
            entry_name, kind, summary, target, tuple(weights), has_pyramid
        )
        return target

    return decorator


def _load_all():
    # The entries register themselves when their modules are imported.
    for module in ("kerazoo.layers", "kerazoo.backbones", "kerazoo.stereo.stem"):
        importlib.import_module(module)


def list_entries(kind: str | None = None, pretrained: bool = False) -> list[Entry]:
    """Registered entries sorted by kind then name; optionally only one kind,
    or only those with pretrained weights."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, received: kind={kind!r}")
    _load_all()
    entries = [
        e
        for e in _REGISTRY.values()
        if (kind is None or e.kind == kind) and (not pretrained or e.weights)
    ]
    return sorted(entries, key=lambda e: (KINDS.index(e.kind), e.name))


# The registry's entries as data, so that `kerazoo list` answers without
# importing Keras (which registering them needs); `tests/test_registry.py`
# checks that it matches the live registry, `write_index` rewrites it.
INDEX = Path(__file__).with_name("registry_index.json")


def _static(entry: Entry) -> dict:
    return {
        "name": entry.name,
        "kind": entry.kind,
        "summary": entry.summary,
        "weights": [dataclasses.asdict(w) for w in entry.weights],
        "pyramid": entry.pyramid,
    }


def live_index() -> list[dict]:
    """Every registered entry as `INDEX` stores it (imports Keras)."""
    return [_static(e) for e in list_entries()]


def write_index(path=INDEX) -> Path:
    """Rewrites `INDEX` from the live registry (after adding an entry)."""
    Path(path).write_text(json.dumps(live_index(), indent=2) + "\n")
    return Path(path)


def describe(kind: str | None = None, pretrained: bool = False) -> list[dict]:
    """`[entry.as_dict() for entry in list_entries(kind, pretrained)]`, read
    from `INDEX` without importing Keras: the weights' availability is looked
    up now, as `as_dict` does."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, received: kind={kind!r}")
    rows = []
    for row in json.loads(INDEX.read_text()):
        if (kind is None or row["kind"] == kind) and (not pretrained or row["weights"]):
            weights = [PretrainedWeights(**w).as_dict() for w in row["weights"]]
            rows.append({**row, "weights": weights})
    return rows


def get(name: str) -> Entry:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(
            f"`name` must be a registered kerazoo name ({known}), received: name={name!r}"
        ) from None


def create(name: str, **kwargs) -> Any:
    """Instantiates a registered layer or builds a registered backbone."""
    return get(name).target(**kwargs)


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
