"""One registry for everything kerazoo offers: layers, backbones and demos.

It drives `kerazoo list`, `kerazoo.create`, and the test matrix, so a new entry
shows up everywhere at once (the kimm / timm pattern).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

KINDS = ("layer", "backbone", "demo")


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    summary: str
    section: str
    target: Any  # the class or builder function

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "summary": self.summary,
                "section": self.section}


_REGISTRY: dict[str, Entry] = {}


def register(kind: str, section: str = "", name: str | None = None) -> Callable:
    """Class / function decorator adding the target to the registry.

    The summary is the first line of the target's docstring.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, received: kind={kind!r}")

    def decorator(target):
        entry_name = name or target.__name__
        if entry_name in _REGISTRY and _REGISTRY[entry_name].target is not target:
            raise ValueError(f"Duplicate kerazoo registry name: {entry_name!r}")
        summary = (target.__doc__ or "").strip().splitlines()[0] if target.__doc__ else ""
        _REGISTRY[entry_name] = Entry(entry_name, kind, summary, section, target)
        return target

    return decorator


def list_entries(kind: str | None = None) -> list[Entry]:
    """Registered entries, optionally of one kind, sorted by kind then name."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, received: kind={kind!r}")
    entries = [e for e in _REGISTRY.values() if kind is None or e.kind == kind]
    return sorted(entries, key=lambda e: (KINDS.index(e.kind), e.name))


def get(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"Unknown kerazoo name {name!r}. Known: {known}") from None


def create(name: str, **kwargs) -> Any:
    """Instantiate a registered layer or build a registered backbone."""
    entry = get(name)
    if entry.kind == "demo":
        raise ValueError(f"{name!r} is a demo; run it with `kerazoo demo {name}`.")
    return entry.target(**kwargs)
