"""Writes a shipped stereo stem as ONNX (`weights/stereo_xception_stem.onnx`,
`weights/stereo_xception_stem_accurate.onnx`) and its manifest entry with
the sha256, from the shipped `.weights.h5`.

    python demos/export_stereo_onnx.py [--quality fast|accurate]

`demos/train_stereo.py` runs it whenever it records new weights, so the two
files never hold different networks; the stereo tests compare their
features. Needs `kerazoo[export]` (the `onnx` package).
"""

import argparse
import json
import sys
from pathlib import Path

from kerazoo.options import STEREO_QUALITIES

ROOT = Path(__file__).resolve().parents[1]


def record(name, path, architecture, weights_dir=ROOT / "weights", **fields):
    """Writes the manifest entry `name` for the shipped file `path`: its
    sha256, size and `architecture`, and `fields` (trained_by, result)."""
    from kerazoo import weights
    from kerazoo._io import atomic_write

    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][name] = {
        "file": path.name,
        "url": None,
        "hash": weights.file_hash(path, "sha256"),
        "hash_algorithm": "sha256",
        "approx_size_mb": round(path.stat().st_size / 1e6, 3),
        "architecture": architecture,
        "fingerprint": None,
        **fields,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write(manifest_path, lambda tmp: Path(tmp).write_text(text), suffix=".json")


def export(quality="fast", weights_dir=ROOT / "weights"):
    from kerazoo import weights
    from kerazoo.stereo.onnx_features import FEATURES_ONNX_OF, write_features_onnx
    from kerazoo.stereo.stem import STEREO_WEIGHTS_OF

    name = STEREO_WEIGHTS_OF[quality]
    source = weights_dir / f"{name}.weights.h5"
    out = write_features_onnx(weights_dir / f"{name}.onnx", str(source), quality)
    record(
        FEATURES_ONNX_OF[quality],
        out,
        f"{name} with BatchNormalization folded, as ONNX (opset 17): kerazoo.stereo.onnx_features",
        weights_dir,
        trained_by=f"demos/export_stereo_onnx.py from {source.name} "
        f"(sha256 {weights.file_hash(source, 'sha256')[:16]}...)",
    )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", choices=STEREO_QUALITIES, default="fast")
    print(export(parser.parse_args().quality))
    sys.exit(0)
