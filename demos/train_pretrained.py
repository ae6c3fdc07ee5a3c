"""Trains the small demos and ships their weights in weights/ (sha256 in the manifest).

    KERAS_BACKEND=tensorflow python demos/train_pretrained.py [adder qa posts similarity]

Fixed seeds and the demos' own default settings, so `kerazoo demo NAME`
answers at once with these weights and `kerazoo demo NAME --retrain` trains
the same model anew.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

from kerazoo import weights
from kerazoo.app.demos import chapter

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURES = {
    "adder": "7.110 adder: Dense(32)-Dense(32)-Dense(1) on 64 inputs",
    "qa": "7.120 question answering: two Embedding+LSTM branches, softmax",
    "posts": "7.130 posts: Embedding-Conv1D base, age/income/gender heads",
    "similarity": "7.150 shared LSTM(32), abs_diff, sigmoid head",
}


def main(names):
    manifest_path = ROOT / "weights" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name in names or chapter.DEMOS:
        summary, trained = chapter.run(name, retrain=True)
        architecture = ARCHITECTURES[name]
        file_name = f"demo_{name}.weights.h5"
        with tempfile.TemporaryDirectory() as tmp:
            tmp_file = Path(tmp) / file_name
            # An uncompiled copy (from_config; clone_model would compile it
            # again): the file holds the model's weights only, no optimizer.
            clean = type(trained).from_config(trained.get_config())
            clean.set_weights(trained.get_weights())
            assert getattr(clean, "optimizer", None) is None
            clean.save_weights(tmp_file)
            shutil.copyfile(tmp_file, ROOT / "weights" / file_name)
        path = ROOT / "weights" / file_name
        manifest["files"][f"demo_{name}"] = {
            "file": file_name,
            "url": None,
            "hash": weights.file_hash(path, "sha256"),
            "hash_algorithm": "sha256",
            "approx_size_mb": round(path.stat().st_size / 1e6, 3),
            "architecture": architecture,
            "fingerprint": None,
            "trained_by": "demos/train_pretrained.py",
            "result": {k: v for k, v in summary.items() if k not in ("history", "weights")},
        }
        print(name, manifest["files"][f"demo_{name}"]["result"], flush=True)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
