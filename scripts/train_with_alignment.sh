#!/usr/bin/env bash
# Fine-tune with middle-layer alignment (mid-align's recipe): task and alignment micro-batches alternate.
# Every variable can be set from the environment (launch_training.sh lists the launch knobs: NPROC, NNODES,
# DEEPSPEED_CONFIG, PRECISION, OVERWRITE, RESUME, ...); arguments are passed on to scripts.run_clm_lora.
# With no MODEL_PATH, the default run (scripts/default_run.sh): SmolLM2-135M-Instruct + LoRA on CPU, trained on
# the embedded English MASSIVE data, each task step followed by two alignment steps on real EN-FR pairs from
# the django/sphinx catalogs, then a report: held-out EN->FR retrieval at layer L before and after, the chance
# level, and MASSIVE EN/FR scores; train_baseline.sh's default run is the same without the alignment steps.
# MODEL_PATH=tiny is the quick smoke mode on a tiny random model and data_example/. The published recipe:
#   MODEL_PATH=meta-llama/Meta-Llama-3-8B-Instruct TRAIN_FILES=train.json VALID_FILES=dev.json NPROC=4 bash scripts/train_with_alignment.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODEL_PATH="${MODEL_PATH:-}"          # local Llama/Qwen2/XGLM/BLOOM folder or hub id, or tiny; empty: the default run
TRAIN_FILES="${TRAIN_FILES:-}"        # rows with prefix, text (+ text_parallel_0/1); default run: built below
VALID_FILES="${VALID_FILES:-}"        # comma-separated; empty: the tiny default checks on the first training rows
ALIGNMENT_FILE="${ALIGNMENT_FILE:-}"  # optional pairs file (TSV or JSONL): the pair stream, besides pairs in the rows
OUTDIR="${OUTDIR:-./outputs/train_with_alignment}"
LORA_CONFIG="${LORA_CONFIG:-}"        # ./config/lora_config.json in the recipe; the default run's has no dropout
LR="${LR:-}"                            # 5e-4 in the recipe; 3e-3 on the tiny default
LR_SCHEDULER="${LR_SCHEDULER:-}"      # inverse_sqrt in the recipe; linear in the default run
EPOCHS="${EPOCHS:-}"                  # 10 in the recipe (doubled from the baseline's 5 because objectives alternate)
LOSS_LAYER="${LOSS_LAYER:-}"          # additional_loss_layer; empty: the middle block; auto: chosen from the pairs below
LOSS_TEMPERATURE="${LOSS_TEMPERATURE:-}"  # 0.1 in the recipe; the default run's own below
LOSS_DISTANCE="${LOSS_DISTANCE:-cosine}"   # cosine, dot or l2
ALIGN_STEPS_PER_TASK="${ALIGN_STEPS_PER_TASK:-}"  # alignment micro-steps after each task one; 1 in the recipe
ALIGN_BSZ="${ALIGN_BSZ:-}"            # pairs per device in an alignment micro-step; empty: TRAIN_BSZ, as in the recipe
POOLING="${POOLING:-mean}"            # mean, last or max
POOLING_SKIP_FIRST="${POOLING_SKIP_FIRST:-1}"  # leading tokens left out of the pooling (attention sink); 0 = mid-align exactly
TRAIN_BSZ="${TRAIN_BSZ:-}" EVAL_BSZ="${EVAL_BSZ:-}" GRAD_ACC="${GRAD_ACC:-}" BLOCK_SIZE="${BLOCK_SIZE:-}"

# The default run (no MODEL_PATH): scripts/default_run.sh's settings, and the alignment objective's own.
source scripts/default_run.sh
default_run_settings
if [ -n "$DEFAULT_RUN" ]; then
  : "${LOSS_TEMPERATURE:=0.05}" "${ALIGN_STEPS_PER_TASK:=2}" "${ALIGN_BSZ:=32}"
fi
: "${LOSS_TEMPERATURE:=0.1}" "${LR_SCHEDULER:=inverse_sqrt}" "${LORA_CONFIG:=./config/lora_config.json}"

source scripts/launch_training.sh
prepare_recipe

build_default_run_data
if [ -n "$DEFAULT_RUN" ]; then ALIGNMENT_FILE="$DATA_DIR/en-fr.train.tsv"; fi
: "${TRAIN_FILES:=./data_example/train_baseline_with_alignment.json}"
if [ "$LOSS_LAYER" = auto ]; then  # the base model's best layer on a seeded sample of the training pairs (stderr: why)
  LAYER_PAIRS="${ALIGNMENT_FILE:-$TRAIN_FILES}"
  LOSS_LAYER="$(python -m scripts.choose_layer --model_name_or_path "$MODEL_PATH" --pairs "${LAYER_PAIRS%%,*}" \
    --pooling "$POOLING" --skip_first "$POOLING_SKIP_FIRST" | tail -n 1)"
fi

default EPOCHS 6 10
default LR 3e-3 5e-4
launch_training \
  --num_train_epochs "$EPOCHS" \
  --training_mode alternate --alignment_steps_per_task_step "${ALIGN_STEPS_PER_TASK:-1}" \
  ${ALIGN_BSZ:+--per_device_alignment_batch_size "$ALIGN_BSZ"} \
  ${LOSS_LAYER:+--additional_loss_layer "$LOSS_LAYER"} \
  --contrastive_loss_temperature "$LOSS_TEMPERATURE" \
  --distance_function "$LOSS_DISTANCE" \
  --contrastive_pooling_type "$POOLING" --contrastive_pooling_skip_first "$POOLING_SKIP_FIRST" "$@"

report_default_run
