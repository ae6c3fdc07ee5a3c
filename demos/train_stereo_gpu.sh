#!/usr/bin/env bash
# One stereo training segment on a machine with a GPU, from the committed
# checkpoint, leaving the new checkpoint in OUT (commit it back as
# demos/checkpoints/stereo so the next segment starts from it anywhere):
#
#   bash demos/train_stereo_gpu.sh OUT [HOURS]
#
# The segment resumes with the checkpoint's own settings (batch, crop,
# schedule): a GPU runs the same steps faster, not different ones.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: demos/train_stereo_gpu.sh OUT [HOURS]}
hours=${2:-0.2}
if [ ! -f demos/checkpoints/stereo/state.json ]; then
  echo "no committed checkpoint in demos/checkpoints/stereo" >&2
  exit 2
fi
mkdir -p "$out"
cp -r demos/checkpoints/stereo "$out/stereo"
python -c "import tensorflow as tf; print('GPUs:', tf.config.list_physical_devices('GPU'))"
python demos/train_stereo.py --checkpoint-dir "$out/stereo" --resume --hours "$hours" --no-record
