"""Writes the shipped stereo stem as ONNX (`weights/stereo_xception_stem.onnx`)
and its manifest entry with the sha256, from the shipped `.weights.h5`.

    python demos/export_stereo_onnx.py

Run it after each `demos/train_stereo.py` training that records its
weights, so the two files never hold different networks; the stereo tests
compare their features. Needs `kerazoo[export]` (the `onnx` package).
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(weights_dir=ROOT / "weights"):
    from kerazoo import weights
    from kerazoo.stereo.onnx_features import FEATURES_ONNX, write_features_onnx

    source = weights_dir / "stereo_xception_stem.weights.h5"
    out = write_features_onnx(weights_dir / "stereo_xception_stem.onnx", weights=str(source))
    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][FEATURES_ONNX] = {
        "file": out.name,
        "url": None,
        "hash": weights.file_hash(out, "sha256"),
        "hash_algorithm": "sha256",
        "approx_size_mb": round(out.stat().st_size / 1e6, 3),
        "architecture": "stereo_xception_stem with BatchNormalization folded, as ONNX "
        "(opset 17): kerazoo.stereo.onnx_features",
        "fingerprint": None,
        "trained_by": f"demos/export_stereo_onnx.py from {source.name} "
        f"(sha256 {weights.file_hash(source, 'sha256')[:16]}...)",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return out


if __name__ == "__main__":
    print(export())
    sys.exit(0)
