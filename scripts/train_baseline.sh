#!/usr/bin/env bash
# Fine-tune on the task only (mid-align's baseline). Same variables, knobs and defaults as train_with_alignment.sh;
# arguments are passed on to scripts.run_clm_lora. With no MODEL_PATH, the default run (scripts/default_run.sh):
# train_with_alignment.sh's default run without its alignment steps (same model, task data, task steps and
# settings), ending with the same report, so the two reports side by side show what alignment adds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODEL_PATH="${MODEL_PATH:-}"          # local model folder or hub id, or tiny; empty: the default run
TRAIN_FILES="${TRAIN_FILES:-}"        # rows with prefix and text; default run: built below
VALID_FILES="${VALID_FILES:-}"
ALIGNMENT_FILE=""
OUTDIR="${OUTDIR:-./outputs/train_baseline}"
LORA_CONFIG="${LORA_CONFIG:-}"        # ./config/lora_config.json in the recipe; the default run's has no dropout
LR="${LR:-}"                            # 5e-4 in the recipe; 3e-3 on the tiny default
LR_SCHEDULER="${LR_SCHEDULER:-}"      # inverse_sqrt in the recipe; linear in the default run
EPOCHS="${EPOCHS:-}"                  # 5 in the recipe
TRAIN_BSZ="${TRAIN_BSZ:-}" EVAL_BSZ="${EVAL_BSZ:-}" GRAD_ACC="${GRAD_ACC:-}" BLOCK_SIZE="${BLOCK_SIZE:-}"

source scripts/default_run.sh
default_run_settings
: "${LR_SCHEDULER:=inverse_sqrt}" "${LORA_CONFIG:=./config/lora_config.json}"

source scripts/launch_training.sh
prepare_recipe

build_default_run_data
: "${TRAIN_FILES:=./data_example/train_baseline.json}"

default EPOCHS 3 5
default LR 3e-3 5e-4
launch_training --num_train_epochs "$EPOCHS" --contrastive_data_mode 0 --only_train_language_modeling "$@"

report_default_run
