"""Finding, verifying and loading pretrained weight files.

The manifest (`weights/manifest.json`, shipped as package data) lists every
file kerazoo knows: canonical file name, URL, hash (Keras publishes md5 for
the ImageNet files; kerazoo's own files use sha256), and the architecture,
recorded as a fingerprint of the weight shapes. `resolve(name)` looks, in
order, in: an explicit path; `$KERAZOO_WEIGHTS`; the package's `weights/`;
the Keras cache (`$KERAS_HOME/models`, else `~/.keras/models`); and finally
downloads through `keras.utils.get_file` into a temporary file that is renamed
into place only once its hash checks out. Every file is verified before use,
and a user's file is never deleted or overwritten.

This module imports Keras lazily (inside the functions that need it), so the
command line can list and verify files quickly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from kerazoo._io import atomic_write, tracked_temporary
from kerazoo.errors import WeightsError, WeightsNotFoundError, WeightsVerificationError

# ----------------------------------------------------------------- manifest


def _package_dir() -> Path:
    return Path(str(resources.files("kerazoo._weights")))


def manifest_path() -> Path:
    """`$KERAZOO_MANIFEST` (a mirror's or a test's), else the packaged one."""
    return Path(os.environ.get("KERAZOO_MANIFEST") or _package_dir() / "manifest.json")


def load_manifest(path=None) -> dict:
    path = Path(path) if path else manifest_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"cannot read the weights manifest {path}: {e}") from None
    return data["files"]


def entry(name: str, manifest=None) -> dict:
    files = manifest if manifest is not None else load_manifest()
    if name not in files:
        raise WeightsError(f"unknown weights name {name!r}; known: {', '.join(sorted(files))}")
    return dict(files[name], name=name)


# ------------------------------------------------------------- directories


def keras_cache_dir() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def search_dirs() -> list[tuple[str, Path]]:
    """Where `resolve` looks, in order, as (label, directory)."""
    dirs = []
    if os.environ.get("KERAZOO_WEIGHTS"):
        dirs.append(("$KERAZOO_WEIGHTS", Path(os.environ["KERAZOO_WEIGHTS"]).expanduser()))
    dirs.append(("package", _package_dir()))
    dirs.append(("keras cache", keras_cache_dir()))
    return dirs


# ------------------------------------------------------------ verification


def file_hash(path, algorithm="sha256", chunk_size=1 << 20) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(layers_shapes) -> str:
    return hashlib.sha256(json.dumps(layers_shapes).encode()).hexdigest()[:16]


def model_fingerprint(model) -> str:
    """Fingerprint of a model's weight shapes, layer by layer, in load order."""
    shapes = []
    for layer in model.layers:
        weights = layer.trainable_weights + layer.non_trainable_weights
        if weights:
            shapes.append([list(w.shape) for w in weights])
    return _fingerprint(shapes)


def h5_fingerprint(path) -> str:
    """Fingerprint of a keras-applications style `.h5` weights file.

    Raises WeightsVerificationError for a file that is not HDF5, is truncated,
    or does not have that layout.
    """
    import h5py

    path = Path(path)
    if not h5py.is_hdf5(path):
        raise WeightsVerificationError(f"{path} is not an HDF5 weights file")
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            layer_names = group.attrs["layer_names"]
            if not isinstance(layer_names, (np.ndarray, list)) or np.ndim(layer_names) != 1:
                raise TypeError("layer_names is not a list")
            names = [n.decode() if isinstance(n, bytes) else n for n in layer_names]
            shapes = []
            for name in names:
                g = group[name]
                weight_names = [
                    w.decode() if isinstance(w, bytes) else w for w in g.attrs["weight_names"]
                ]
                if weight_names:
                    shapes.append([list(g[w].shape) for w in weight_names])
    except KeyError as e:
        raise WeightsVerificationError(
            f"{path} is HDF5 but not a Keras weights file (missing {e})"
        ) from None
    except (TypeError, ValueError, AttributeError):  # e.g. a scalar `layer_names`
        raise WeightsVerificationError(
            f"{path} is HDF5 but not in the keras-applications weights layout"
        ) from None
    except OSError as e:
        raise WeightsVerificationError(
            f"{path} is truncated or corrupt ({str(e).splitlines()[0]})"
        ) from None
    return _fingerprint(shapes)


def _describe_fingerprint(fingerprint, manifest) -> str:
    names = [n for n, e in manifest.items() if e.get("fingerprint") == fingerprint]
    return f"{' / '.join(names)}" if names else "an architecture kerazoo does not know"


def verify(path, name, manifest=None, check_hash=True) -> dict:
    """Checks that `path` is a usable copy of manifest entry `name`.

    In order: the file exists; for an `.h5` entry, it is HDF5, not truncated,
    and holds the expected architecture; its hash matches the release.
    `check_hash=False` accepts any file of the right architecture (your own
    fine-tuned weights). Returns a dict describing the file.
    """
    files = manifest if manifest is not None else load_manifest()
    info = entry(name, files)
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: no such file")
    if info.get("fingerprint"):
        found = h5_fingerprint(path)
        if found != info["fingerprint"]:
            raise WeightsVerificationError(
                f"{path} holds weights for {_describe_fingerprint(found, files)}, not "
                f"{name} ({info['architecture']}); pass the matching file"
            )
    result = {
        "name": name,
        "path": str(path),
        "size": path.stat().st_size,
        "verified": False,
        "hash_checked": check_hash,
    }
    if check_hash:
        algorithm = info["hash_algorithm"]
        got = file_hash(path, algorithm)
        if got != info["hash"]:
            raise WeightsVerificationError(
                f"{path}: {algorithm} {got} does not match the {name} release "
                f"({info['hash']}): the file is corrupted or a different release; "
                f"move it away, then run `kerazoo weights fetch {name}`"
            )
        result["verified"] = True
    return result


# -------------------------------------------------------------- resolution


def _download(info, target_dir: Path) -> Path:
    """Downloads into a temporary directory beside the target, verifies, renames.

    An interrupted or failed download leaves nothing under the canonical name.
    """
    import keras

    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".kerazoo-download-", dir=target_dir))
    try:
        with tracked_temporary(tmp):
            keras.utils.get_file(
                info["file"],
                origin=info["url"],
                file_hash=info["hash"],
                hash_algorithm=info["hash_algorithm"],
                cache_dir=str(tmp),
                cache_subdir="",
            )
            downloaded = tmp / info["file"]
            final = target_dir / info["file"]
            os.replace(downloaded, final)
            return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def find(name, manifest=None) -> tuple[str, Path] | None:
    """The first (label, path) holding the canonical file, without verifying."""
    info = entry(name, manifest)
    for label, directory in search_dirs():
        candidate = directory / info["file"]
        if candidate.is_file():
            return label, candidate
    return None


def resolve(name, path=None, download=True, manifest=None) -> Path:
    """The verified local path of weights `name`, downloading them if needed.

    Raises:
        WeightsNotFoundError: not found locally and the download failed
            (offline); the message says where it looked and how to import
            a copy fetched elsewhere.
        WeightsVerificationError: a file was found but failed verification.
    """
    files = manifest if manifest is not None else load_manifest()
    info = entry(name, files)
    if path is not None:
        verify(path, name, files)
        return Path(path)
    # Every copy, in search order: a corrupt one early in the path (a bad
    # file in $KERAZOO_WEIGHTS) must not hide a good one after it.
    first_error = None
    for _, directory in search_dirs():
        candidate = directory / info["file"]
        if not candidate.is_file():
            continue
        try:
            verify(candidate, name, files)
        except WeightsVerificationError as e:
            first_error = first_error or e
            continue
        if first_error is not None:
            warnings.warn(f"{first_error}; using the verified {candidate}", stacklevel=2)
        return candidate
    if first_error is not None:
        raise first_error
    if not download:
        raise WeightsNotFoundError(
            f"{info['file']} ({name}) not found in {_searched()}; run "
            f"`kerazoo weights fetch {name}`"
        )
    return _download_or_explain(info, keras_cache_dir())


def _searched() -> str:
    return ", ".join(str(d) for _, d in search_dirs())


def _download_or_explain(info, target_dir: Path) -> Path:
    if not info.get("url"):
        raise WeightsNotFoundError(
            f"{info['file']} ({info['name']}) ships inside kerazoo and has no download URL; "
            f"not found in {_searched()}: reinstall kerazoo"
        )
    try:
        return _download(info, target_dir)
    except OSError as e:
        if e.filename is None or not str(e.filename).startswith(str(target_dir)):
            raise WeightsNotFoundError(f"downloading {info['url']} failed: {e}") from None
        # The cache folder refused the file: not a download problem.
        raise WeightsNotFoundError(
            f"cannot write {info['file']} into {target_dir} ({e.strerror or e}): set "
            "KERAS_HOME to a writable folder, or run kerazoo weights import on a copy"
        ) from None
    except Exception as e:  # get_file raises a bare Exception for URL errors
        reason = " ".join(str(e).split())[:200]
        raise WeightsNotFoundError(
            f"{info['file']} ({info['name']}) is not available: not found in "
            f"{_searched()}, and downloading {info['url']} failed ({reason}). Fetch "
            f"that file on a machine with internet, then run: kerazoo weights import "
            f"/path/to/{info['file']}"
        ) from None


def fetch(name, target_dir=None, manifest=None) -> Path:
    """Downloads weights `name` into `target_dir` (default: the Keras cache)."""
    info = entry(name, manifest)
    target = Path(target_dir) if target_dir else keras_cache_dir()
    final = target / info["file"]
    if final.exists():
        verify(final, name, manifest)
        return final
    path = _download_or_explain(info, target)
    verify(path, name, manifest)
    return path


def identify(path, manifest=None) -> str:
    """The manifest name whose hash matches `path`."""
    files = manifest if manifest is not None else load_manifest()
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: no such file")
    hashes = {}
    for name, info in files.items():
        algorithm = info["hash_algorithm"]
        if algorithm not in hashes:
            hashes[algorithm] = file_hash(path, algorithm)
        if hashes[algorithm] == info["hash"]:
            return name
    detail = ""
    try:
        detail = f" (it holds weights for {_describe_fingerprint(h5_fingerprint(path), files)})"
    except WeightsVerificationError as e:
        detail = f" ({e})"
    raise WeightsVerificationError(
        f"{path} matches no release in the manifest{detail}; pass it by path instead"
    )


def import_file(path, name=None, target_dir=None, manifest=None) -> Path:
    """Verifies a file fetched elsewhere and copies it into the Keras cache
    (or `target_dir`) under its canonical name, atomically."""
    name = name or identify(path, manifest)
    verify(path, name, manifest)
    info = entry(name, manifest)
    target = Path(target_dir) if target_dir else keras_cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    final = target / info["file"]
    if final.exists() and file_hash(final, info["hash_algorithm"]) != info["hash"]:
        raise WeightsVerificationError(
            f"{final} exists and is not the {name} release; move it away first"
        )
    if final.exists() and final.resolve() == Path(path).resolve():
        return final
    return atomic_write(final, lambda tmp: shutil.copyfile(path, tmp))


def status(manifest=None) -> list[dict]:
    """One row per manifest entry: present, where, verified."""
    files = manifest if manifest is not None else load_manifest()
    rows = []
    for name, info in files.items():
        found = find(name, files)
        row = {
            "name": name,
            "architecture": info["architecture"],
            "file": info["file"],
            "present": found is not None,
            "where": None,
            "path": None,
            "verified": False,
            "error": None,
        }
        if found:
            row["where"], row["path"] = found[0], str(found[1])
            try:
                row["verified"] = verify(found[1], name, files)["verified"]
            except WeightsError as e:
                row["error"] = str(e)
        rows.append(row)
    return rows


# ------------------------------------------------------------------ loading


def load_into(model, path, name, manifest=None) -> Path:
    """Loads the weights file at `path` into the keras-applications `model`.

    `path` is what `resolve(name)` returned (verified there, hash included:
    it is not hashed again), or your own file of the same architecture: the
    keras-applications `.h5` layout (checked against manifest entry `name`'s
    architecture fingerprint) or a Keras 3 `.weights.h5`. Returns the path.
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: no such weights file")
    if not path.name.endswith(".weights.h5"):
        verify(path, name, manifest, check_hash=False)  # the right architecture
    load_weights_quietly(model, path, f"{name}")
    return path


def load_weights_quietly(model, path, what):
    """`model.load_weights(path)`, with Keras's per-layer warnings about a
    file that does not fit turned into one WeightsVerificationError line."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(str(path))
    except (ValueError, OSError, KeyError, TypeError) as e:
        reason = " ".join(str(e).split())
        raise WeightsVerificationError(f"{path} does not fit {what}: {reason[:240]}") from None
