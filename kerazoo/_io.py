"""Small I/O helpers: atomic writes and robust image reads."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from kerazoo.errors import InputError


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def default_file_mode() -> int:
    """What `open()` would give a new file (mkstemp's own files are 0600)."""
    return 0o666 & ~current_umask()


# Temporaries being written now: an interrupted command removes them on its
# way out (`remove_temporaries`), even when it cannot unwind.
_TEMPORARIES: set = set()


@contextlib.contextmanager
def tracked_temporary(path):
    """Registers `path` (a file or a folder) as a temporary while in the block."""
    _TEMPORARIES.add(str(path))
    try:
        yield path
    finally:
        _TEMPORARIES.discard(str(path))


def remove_temporaries() -> None:
    import shutil

    for path in list(_TEMPORARIES):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)


def atomic_write(path, write, suffix=None):
    """Calls `write(tmp_path)` then renames tmp_path to `path`.

    The temporary file sits beside `path`, so the rename is atomic and a
    failure (or an interrupt) never leaves a half-written `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with errors_named_for(path):
        fd, tmp = tempfile.mkstemp(
            prefix=temporary_prefix(path), suffix=suffix or path.suffix, dir=path.parent
        )
        os.close(fd)
        with tracked_temporary(tmp):
            try:
                write(tmp)
                os.chmod(tmp, default_file_mode())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
    return path


def temporary_prefix(path: Path) -> str:
    """The name of a hidden temporary (file or folder) staged beside `path`."""
    return f".{path.name}."


@contextlib.contextmanager
def errors_named_for(path: Path):
    """Re-raises an OS error about `path`'s temporaries (or what is in them) as
    the same error about `path`: the user asked for `path` and has never heard
    of the temporaries. Errors about other files pass unchanged."""
    staged = str(path.parent / temporary_prefix(path))
    try:
        yield
    except OSError as e:
        names = [name for name in (e.filename, e.filename2) if name is not None]
        # A write that failed with no file named (a full disk) was ours.
        if e.errno is None or (names and not any(str(n).startswith(staged) for n in names)):
            raise
        raise type(e)(e.errno, e.strerror, str(path)) from None


def write_json(path, data):
    return atomic_write(
        path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, default=str) + "\n")
    )


def write_npy(path, array):
    return atomic_write(path, lambda tmp: np.save(tmp, array))


def resize_image(image, height, width) -> np.ndarray:
    """Bilinear resize of a float32 (H, W, C) array, channel by channel
    (Pillow's float mode keeps values beyond 0-255 intact)."""
    from PIL import Image

    channels = [
        Image.fromarray(np.ascontiguousarray(image[..., c])).resize((width, height), Image.BILINEAR)
        for c in range(image.shape[-1])
    ]
    return np.stack([np.asarray(c, np.float32) for c in channels], axis=-1)


# Larger images are refused: a decompression bomb (a small file that decodes
# to gigabytes) must fail in one line, not take the machine's memory.
MAX_IMAGE_PIXELS = 150_000_000


@contextlib.contextmanager
def _pillow_limit():
    """Pillow's own bomb check at kerazoo's limit (its default, 89 MP, would
    refuse images kerazoo promises to read), restored afterwards."""
    from PIL import Image

    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


# EXIF orientations (tag 0x0112) 5-8 turn the stored image by 90 degrees.
_EXIF_ORIENTATION_TAG = 0x0112


def _exif_orientation(image) -> int:
    try:
        orientation = int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except (ValueError, TypeError, OSError, SyntaxError):
        return 1  # a damaged EXIF block: show the image as stored
    return orientation if 1 <= orientation <= 8 else 1


def _check_regular_file(path: Path, what: str) -> None:
    """One line for a path that is no regular file, saying what it is."""
    try:
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not {what}")
        if path.is_file():
            return
        exists = path.exists()
    except OSError as e:  # a link loop, a path too long
        raise InputError(f"{path}: {e.strerror or e}") from None
    if os.path.islink(path) and not exists:
        raise InputError(f"{path}: a broken or looping link")
    if exists:
        raise InputError(f"{path}: not a regular file (a device, pipe or socket), not {what}")
    raise InputError(f"{path}: no such file")


def _open_checked(path, action, bomb_warning="error"):
    """Runs `action(image)` on the opened file, every Pillow failure turned
    into one `InputError` line."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_regular_file(path, "an image file")
    try:
        with _pillow_limit(), warnings.catch_warnings():
            warnings.simplefilter(bomb_warning, Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return action(image)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image Pillow can read") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: refused as a decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: unreadable or truncated image ({e})") from None


def image_size(path) -> tuple:
    """`(width, height)` as the image is shown (its EXIF orientation
    applied), from the file's header, without decoding it."""
    width, height, orientation = image_header(path)
    return (height, width) if orientation >= 5 else (width, height)


def image_header(path) -> tuple:
    """`(stored width, stored height, EXIF orientation)` (1: upright), from
    the file's header."""

    def header(image):
        return (*image.size, _exif_orientation(image))

    # Sized by the reader, which refuses what is over kerazoo's limit.
    return _open_checked(path, header, bomb_warning="ignore")


# The Pillow modes that hold more than 8 bits a sample, read as float32.
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def read_image(path, size=None) -> np.ndarray:
    """An image file as an (h, w, 3) array on its own scale, upright.

    8-bit images (RGB, RGBA with alpha dropped, grey, palette) give uint8;
    16-bit, 32-bit and float images give float32 with the file's values, so
    a caller can scale two images alike (`StereoMatcher` does). The EXIF
    orientation is applied. `size=(width, height)` resizes it while reading
    (JPEGs are even decoded smaller), so a large file never exists at full
    size in float32. Images above `MAX_IMAGE_PIXELS` are refused.
    """
    from PIL import Image, ImageOps

    width, height = image_size(path)
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(
            f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, "
            f"over the {MAX_IMAGE_PIXELS / 1e6:.0f} MP kerazoo reads"
        )

    def decode(image):
        if size is not None and image.format == "JPEG":
            stored = tuple(size)[::-1] if _exif_orientation(image) >= 5 else tuple(size)
            image.draft("RGB", stored)  # decode at 1/2, 1/4, 1/8 scale
        image.load()  # decode now: a truncated file fails here
        image = ImageOps.exif_transpose(image)
        if image.mode in _WIDE_MODES:
            grey = image.convert("F")
            if size is not None and grey.size != tuple(size):
                grey = grey.resize(tuple(size), Image.BILINEAR)
            return np.repeat(np.asarray(grey, np.float32)[..., None], 3, axis=-1)
        image = image.convert("RGB")
        if size is not None and image.size != tuple(size):
            image = image.resize(tuple(size), Image.BILINEAR, reducing_gap=2.0)
        return np.asarray(image, np.uint8)

    return np.ascontiguousarray(_open_checked(path, decode))


def full_scale(peak) -> float:
    """The full scale of integer samples whose largest value is `peak`: the
    smallest `2**bits - 1` (8 bits or more) that holds it, so a 12-bit
    sensor's image in a 16-bit file reads as 12-bit."""
    bits = max(8, int(np.ceil(np.log2(float(peak) + 1.0))))
    return float(2**bits - 1)


def read_image_rgb(path, size=None) -> np.ndarray:
    """`read_image` as float32 RGB in 0-255: wider images are scaled by their
    full scale (`full_scale` of their peak; float images in 0..1 by 255)."""
    image = read_image(path, size)
    if image.dtype == np.uint8:
        return image.astype(np.float32)
    return np.clip(image * (255.0 / _shared_full_scale([image])), 0, 255).astype(np.float32)


def _shared_full_scale(images) -> float:
    peak = max(float(np.max(image, initial=0.0)) for image in images)
    if peak <= 1.0 and all(np.issubdtype(i.dtype, np.floating) for i in images):
        return 1.0  # floats in 0..1
    if peak <= 255.0:
        return 255.0
    return full_scale(peak)


# What a .keras archive may hold before Keras is given it: beyond these, a
# small file that inflates to gigabytes (a zip bomb) is refused in one line.
# A .keras holds config.json, metadata.json, model.weights.h5 and assets/.
MAX_ARCHIVE_MEMBERS = 1000
MAX_CONFIG_BYTES = 64 << 20  # config.json and metadata.json, read whole by Keras
MAX_ARCHIVE_BYTES = 16 << 30  # everything, uncompressed
MAX_INFLATION = 200  # uncompressed / compressed, for members over 16 MiB
_INFLATION_FROM_BYTES = 16 << 20


def check_keras_archive(path) -> None:
    """Refuses a `.keras` archive that would take unbounded memory or disk to
    load: too many members, a config over `MAX_CONFIG_BYTES`, more than
    `MAX_ARCHIVE_BYTES` in all, or a large member inflating over
    `MAX_INFLATION` times (weights barely compress). Reads only the zip's
    directory."""
    import zipfile

    def size(n):
        return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable .keras archive ({e})") from None
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise InputError(
            f"{path}: refused: {len(members)} files in the archive, over "
            f"{MAX_ARCHIVE_MEMBERS} (a .keras model holds a few)"
        )
    total = 0
    for member in members:
        total += member.file_size
        if (
            member.filename in ("config.json", "metadata.json")
            and member.file_size > MAX_CONFIG_BYTES
        ):
            raise InputError(
                f"{path}: refused: its {member.filename} inflates to "
                f"{size(member.file_size)}, over {size(MAX_CONFIG_BYTES)}"
            )
        inflation = member.file_size / max(member.compress_size, 1)
        if member.file_size > _INFLATION_FROM_BYTES and inflation > MAX_INFLATION:
            raise InputError(
                f"{path}: refused: {member.filename} inflates {inflation:.0f}x "
                f"to {size(member.file_size)} (a zip bomb?)"
            )
    if total > MAX_ARCHIVE_BYTES:
        raise InputError(
            f"{path}: refused: the archive inflates to {size(total)}, over "
            f"{size(MAX_ARCHIVE_BYTES)}"
        )


def load_keras_model(path):
    """`keras.saving.load_model(path, safe_mode=True)`, with a missing, empty,
    truncated, foreign or oversized (`check_keras_archive`) file reported as
    one `InputError` line."""
    import zipfile

    import keras

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"{path}: not a .keras model (not a zip archive: empty, truncated or another format)"
        )
    check_keras_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # zip, JSON or weights errors all mean: not a usable model
        raise InputError(f"{path}: not a loadable .keras model ({_root_cause(e)})") from None


def _root_cause(error, limit=300) -> str:
    """The innermost message of an exception chain, on one line: Keras wraps
    the cause of a failed load in a generic "could not be deserialized"."""
    seen = set()
    while id(error) not in seen and (error.__cause__ or error.__context__) is not None:
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:limit]
