"""Writes the stereo pair the README's first command runs on: demos/data/.

    python demos/make_stereo_pair.py

A generated scene (kerazoo.app.demos.stereo_data.synthetic_pair, seed 0, 384x512):
left.png, right.png, and disparity_gt.png (16-bit, disparity * 256, 0 where
unknown: the KITTI convention). Exact ground truth, no licence questions.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from kerazoo.app.demos.stereo_data import synthetic_pair

OUT = Path(__file__).parent / "data"


def main():
    pair = synthetic_pair(height=384, width=512, seed=0)
    OUT.mkdir(exist_ok=True)
    Image.fromarray(pair.left).save(OUT / "left.png")
    Image.fromarray(pair.right).save(OUT / "right.png")
    gt = np.nan_to_num(pair.disparity, nan=0.0)
    Image.fromarray((gt * 256).round().astype(np.uint16)).save(OUT / "disparity_gt.png")
    print(f"wrote {OUT}: max disparity {pair.max_disparity}")


if __name__ == "__main__":
    main()
