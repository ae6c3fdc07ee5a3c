#!/usr/bin/env bash
# One stereo training segment on a machine with a GPU, from the committed
# checkpoint of QUALITY (fast: demos/checkpoints/stereo, accurate:
# demos/checkpoints/stereo_accurate), leaving the new checkpoint in OUT
# (commit it back in its place so the next segment starts from it anywhere):
#
#   bash demos/train_stereo_gpu.sh OUT [HOURS] [QUALITY]
#
# The segment resumes with the checkpoint's own settings (batch, crop,
# schedule): a GPU runs the same steps faster, not different ones.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: demos/train_stereo_gpu.sh OUT [HOURS] [QUALITY]}
hours=${2:-0.2}
quality=${3:-fast}
case "$quality" in
  fast) name=stereo ;;
  accurate) name=stereo_accurate ;;
  *) echo "QUALITY must be fast or accurate, received $quality" >&2; exit 2 ;;
esac
if [ ! -f "demos/checkpoints/$name/state.json" ]; then
  echo "no committed checkpoint in demos/checkpoints/$name" >&2
  exit 2
fi
mkdir -p "$out"
cp -r "demos/checkpoints/$name" "$out/$name"
python -c "import tensorflow as tf; print('GPUs:', tf.config.list_physical_devices('GPU'))"
python demos/train_stereo.py --checkpoint-dir "$out/$name" --quality "$quality" --resume \
  --hours "$hours" --no-record
