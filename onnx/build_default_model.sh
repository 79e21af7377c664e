#!/usr/bin/env bash
# Rebuild the shipped default model (medcorr/data/model) and its cross-validation table.
# Needs the train extra:  pip install -e ".[train]"
# Usage: bash onnx/build_default_model.sh [MEDEC_CSV]   (default: ../shared/medec validation set)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/medec/MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv}"
RUNS="${RUNS:-runs}"
mkdir -p "$RUNS"

# 1. Fine-tune all-MiniLM-L6-v2 (default TrainConfig: 2 epochs, seed 13, 20% grouped dev split for the threshold).
medcorr train --data "$DATA" --out "$RUNS/default-ckpt" --threads "$(nproc)"
# 2. Export: ONNX opset 17 fp32, verified against PyTorch, then int8 dynamic quantization (shipped).
medcorr export "$RUNS/default-ckpt" --out medcorr/data/model --no-fp32
# 3. Grouped 5-fold cross-validation of the same recipe (seed 13), scored with PyTorch fp32, ONNX fp32, ONNX int8.
if [ "${SKIP_CV:-0}" != "1" ]; then
  medcorr cv --data "$DATA" --folds 5 --seed 13 --out "$RUNS/cv" --threads "$(nproc)" --quiet
  # 4. The model card, rendered from the model metadata and the CV result.
  python onnx/write_model_card.py --cv "$RUNS/cv/cv.json"
fi
