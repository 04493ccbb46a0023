#!/usr/bin/env bash
# Fine-tune on the task only (mid-align's baseline). Same variables, knobs and defaults as train_with_alignment.sh;
# arguments are passed on to scripts.run_clm_lora.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODEL_PATH="${MODEL_PATH:-}"
TRAIN_FILES="${TRAIN_FILES:-./data_example/train_baseline.json}"   # rows with prefix and text
VALID_FILES="${VALID_FILES:-}"
ALIGNMENT_FILE=""
OUTDIR="${OUTDIR:-./outputs/train_baseline}"
LORA_CONFIG="${LORA_CONFIG:-./config/lora_config.json}"
LR="${LR:-}"                            # 5e-4 in the recipe; 3e-3 on the tiny default
LR_SCHEDULER="${LR_SCHEDULER:-inverse_sqrt}"
EPOCHS="${EPOCHS:-}"                  # 5 in the recipe
TRAIN_BSZ="${TRAIN_BSZ:-}" EVAL_BSZ="${EVAL_BSZ:-}" GRAD_ACC="${GRAD_ACC:-}" BLOCK_SIZE="${BLOCK_SIZE:-}"

source scripts/launch_training.sh
prepare_recipe
default EPOCHS 3 5
default LR 3e-3 5e-4
launch_training --num_train_epochs "$EPOCHS" --contrastive_data_mode 0 --only_train_language_modeling "$@"
