#!/usr/bin/env bash
# AFP (Align aFter Pretraining): multilingual contrastive learning (MCL) + cross-lingual instruction
# tuning (CIT) in every step: loss = CL_WEIGHT * MCL + CLM_WEIGHT * CIT, MCL on the `last` (or `avg`)
# pooled output of block N. Every variable can be set from the environment; with none set the
# embedded default runs offline on CPU: a tiny XGLM built locally and data_example/afp.
# The published recipe: MODEL_PATH=facebook/xglm-564M USE_LORA=False POOLER=last-1 bash scripts/train_afp.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODEL_PATH="${MODEL_PATH:-tiny}"              # XGLM, BLOOM or LLaMA folder or hub id; tiny: the smoke model
TINY_MODEL_TYPE="${TINY_MODEL_TYPE:-xglm}"     # architecture of the tiny default (xglm, bloom, llama, qwen2)
TRAIN_FILES="${TRAIN_FILES:-./data_example/afp/AFP.en_zh.train.json}"  # scripts.generate_sup_data output
VALID_FILES="${VALID_FILES:-}"
ALIGNMENT_FILE=""
OUTDIR="${OUTDIR:-./outputs/train_afp}"
USE_LORA="${USE_LORA:-False}"                 # AFP fine-tunes all weights; True trains a LoRA adapter
LORA_CONFIG="${LORA_CONFIG:-}"               # default: config/ has one per architecture
POOLER="${POOLER:-last-1}"                     # AFP's pooler: (last|avg|max)-N, N = the decoder block (1-indexed)
CL_TEMPERATURE="${CL_TEMPERATURE:-0.05}"
CL_WEIGHT="${CL_WEIGHT:-1.0}"
CLM_WEIGHT="${CLM_WEIGHT:-1.5}"
LR="${LR:-}"                                  # 1e-5 in the recipe
LR_SCHEDULER="${LR_SCHEDULER:-cosine}"
MAX_STEPS="${MAX_STEPS:-}"                    # 5000 in the recipe
ICL_DATA_DIR="${ICL_DATA_DIR-./data_example/icl}"  # cross-lingual ICL evaluation after training; empty: skip
ICL_TASKS="${ICL_TASKS:-xnli,pawsx,xcopa,xstorycloze,xwinograd}"
ICL_LANGS="${ICL_LANGS:-en,zh}"                 # test languages; demonstrations and prompts are in English
TRAIN_BSZ="${TRAIN_BSZ:-}" EVAL_BSZ="${EVAL_BSZ:-}" GRAD_ACC="${GRAD_ACC:-}" BLOCK_SIZE="${BLOCK_SIZE:-}"

POOLING="${POOLER%-*}"; LOSS_LAYER="${POOLER##*-}"
[ "$POOLING" = "avg" ] && POOLING=mean
case "$POOLING" in mean|last|max) ;; *) echo "POOLER=$POOLER: expected (last|avg|max)-N" >&2; exit 2;; esac
[ "$USE_LORA" = "True" ] || [ "$USE_LORA" = "False" ] || { echo "USE_LORA=$USE_LORA: expected True or False" >&2; exit 2; }

if [ -z "$LORA_CONFIG" ]; then
  case "$TINY_MODEL_TYPE" in xglm|bloom) LORA_CONFIG="./config/lora_config_$TINY_MODEL_TYPE.json";; *) LORA_CONFIG=./config/lora_config.json;; esac
fi

source scripts/launch_training.sh
prepare_recipe
default LR 5e-4 1e-5
default MAX_STEPS 60 5000
default TRAIN_BSZ 8 4
default GRAD_ACC 1 1
default BLOCK_SIZE 256 512
launch_training \
  --max_steps "$MAX_STEPS" --training_mode joint --data_schema afp \
  --additional_loss_layer "$LOSS_LAYER" --contrastive_pooling_type "$POOLING" \
  --contrastive_loss_temperature "$CL_TEMPERATURE" \
  --contrastive_loss_weight "$CL_WEIGHT" --task_loss_weight "$CLM_WEIGHT" \
  --gather_negatives_across_ranks True "$@"

if [ -n "$ICL_DATA_DIR" ]; then
  model=(--model_name_or_path "$OUTDIR")
  [ "$USE_LORA" = "True" ] && model=(--model_name_or_path "$MODEL_PATH" --peft_model_id "$OUTDIR")
  python -m scripts.eval_icl "${model[@]}" --tasks "$ICL_TASKS" --shots 0,5 --prompt_lang en --test_lang "$ICL_LANGS" \
    --data_dir "$ICL_DATA_DIR" --output_json "$OUTDIR/icl_results.json" 2>&1 | tee "$OUTDIR/icl.log"
fi
