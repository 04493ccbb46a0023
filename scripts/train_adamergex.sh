#!/usr/bin/env bash
# AdaMergeX end to end: reference-task data, three adapters (task src, reference src and tgt), merge, evaluate in tgt.
# Every variable can be set from the environment. With none set, the embedded default runs offline on CPU: a tiny
# random model built locally, data_example/adamergex (English task, Swahili target), a few minutes. Real recipe:
#   MODEL_PATH=NousResearch/Llama-2-7b-hf ADAPTER=lora TASK_FILE=gsm8k_en.json REF_SOURCE_TEXT=wiki_en.txt \
#   REF_TARGET_TEXT=wiki_sw.txt MGSM_FILE=mgsm_sw.tsv T=1.0 bash scripts/train_adamergex.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODEL_PATH="${MODEL_PATH:-tiny}"      # local Llama/Qwen2/XGLM/BLOOM folder or hub id; tiny: the smoke model
ADAPTER="${ADAPTER:-lora}"            # lora or ia3: picks config/lora_config.json or config/ia3_config.json
ADAPTER_CONFIG="${ADAPTER_CONFIG:-./config/${ADAPTER}_config.json}"
SOURCE_LANG="${SOURCE_LANG:-en}"      # language of the task data
TARGET_LANG="${TARGET_LANG:-sw}"      # language the merged adapter is for
TASK_FILE="${TASK_FILE:-./data_example/adamergex/task_en.json}"              # {prompt, completion} or {prefix, text}
REF_SOURCE_TEXT="${REF_SOURCE_TEXT:-./data_example/adamergex/wiki/${SOURCE_LANG}.txt}"  # raw text, space-separated files
REF_TARGET_TEXT="${REF_TARGET_TEXT:-./data_example/adamergex/wiki/${TARGET_LANG}.txt}"
CHUNK_SIZE="${CHUNK_SIZE:-}"          # words (characters for zh, ja, th, ...) per reference window: 512 in the recipe
PROMPT_UNITS="${PROMPT_UNITS:-0}"     # 0: the loss covers the whole window, as AdaMergeX's effective objective
REF_MAX_CHUNKS="${REF_MAX_CHUNKS:-}"  # windows per language; empty: all
T="${T:-1.0}"                         # weight of the language gap ref_target - ref_source
MERGE_METHOD="${MERGE_METHOD:-}"      # LoRA: delta (default), delta-svd (needs MERGE_RANK), per-factor; IA3: ratio
MERGE_RANK="${MERGE_RANK:-}"
OUTDIR="${OUTDIR:-./outputs/adamergex-${ADAPTER}-${SOURCE_LANG}-${TARGET_LANG}}"
# Training, as the reference's train_lora.py: batch 4 x 2, 3 epochs, cosine, warmup 0.05, grad norm 0.3, bf16.
LR="${LR:-}"                          # 2e-4 for LoRA (train_lora.py), 5e-4 for IA3 (train_ia3.py)
LR_SCHEDULER="${LR_SCHEDULER:-cosine}" WARMUP_RATIO="${WARMUP_RATIO:-0.05}" MAX_GRAD_NORM="${MAX_GRAD_NORM:-0.3}"
EPOCHS="${EPOCHS:-3}" MAX_STEPS="${MAX_STEPS:--1}" SEED="${SEED:-1}" REPORT_TO="${REPORT_TO:-none}"
TRAIN_BSZ="${TRAIN_BSZ:-4}" GRAD_ACC="${GRAD_ACC:-2}" BLOCK_SIZE="${BLOCK_SIZE:-1024}" NPROC="${NPROC:-}"
DEEPSPEED_CONFIG="${DEEPSPEED_CONFIG:-}"  # empty: off; e.g. ./config/deepspeed_config.json (launch_training.sh: the knobs)
# Evaluation in the target language, of each adapter folder named in EVAL_ADAPTERS ("base" = no adapter).
EVAL_ADAPTERS="${EVAL_ADAPTERS:-merged task}"
MGSM_FILE="${MGSM_FILE-./data_example/adamergex/mgsm_${TARGET_LANG}.tsv}"  # set empty to skip MGSM
MGSM_MAX_EXAMPLES="${MGSM_MAX_EXAMPLES:-}"
MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-}"  # 512 in the recipe
EVAL_BSZ="${EVAL_BSZ:-8}"
MASSIVE_DIR="${MASSIVE_DIR:-}"        # folder of MASSIVE <locale>.jsonl files; empty: no MASSIVE evaluation
MASSIVE_PARTITION="${MASSIVE_PARTITION:-test}" MASSIVE_MAX_EXAMPLES="${MASSIVE_MAX_EXAMPLES:-}"
ICL_DATA_DIR="${ICL_DATA_DIR:-}"      # folder in docs/afp.md's layout; empty: no ICL evaluation
ICL_TASKS="${ICL_TASKS:-xnli,pawsx,xcopa,xstorycloze,xwinograd}" ICL_SHOTS="${ICL_SHOTS:-0,5}"
ICL_PROMPT_LANG="${ICL_PROMPT_LANG:-$SOURCE_LANG}"

[ "$SOURCE_LANG" != "$TARGET_LANG" ] || { echo "SOURCE_LANG and TARGET_LANG are both $SOURCE_LANG" >&2; exit 2; }
case "$ADAPTER" in
  lora) default_lr=2e-4 ;;
  ia3) default_lr=5e-4 ;;
  *) echo "ADAPTER=$ADAPTER: use lora or ia3" >&2; exit 2 ;;
esac
LR="${LR:-$default_lr}"

source scripts/launch_training.sh  # prepare_recipe, launch_run, default
prepare_recipe
default CHUNK_SIZE 64 512
default MAX_NEW_TOKENS 128 512
size_args=(--save_strategy no --dataloader_num_workers 0)
[ -z "$TINY" ] && size_args=(--save_strategy epoch --save_total_limit 1 --dataloader_num_workers 1)
check_run_fits "$TRAIN_BSZ" "$BLOCK_SIZE" --use_lora True --lora_config "$ADAPTER_CONFIG"
mkdir -p "$OUTDIR/data" "$OUTDIR/eval"

echo "== 1. reference-task data ($SOURCE_LANG, $TARGET_LANG)"
build_reference() {  # language, output, raw text files (one word)
  local inputs
  read -r -a inputs <<< "$3"
  python -m scripts.construct_dataset_lm --input "${inputs[@]}" --language "$1" --output "$2" \
    --chunk_size "$CHUNK_SIZE" --prompt_units "$PROMPT_UNITS" ${REF_MAX_CHUNKS:+--max_chunks "$REF_MAX_CHUNKS"}
}
build_reference "$SOURCE_LANG" "$OUTDIR/data/ref_$SOURCE_LANG.json" "$REF_SOURCE_TEXT"
build_reference "$TARGET_LANG" "$OUTDIR/data/ref_$TARGET_LANG.json" "$REF_TARGET_TEXT"

echo "== 2. three $ADAPTER adapters, task loss only, same seed"
train_adapter() {  # output folder, training file, then the user's run_clm_lora arguments
  local outdir="$1" file="$2"; shift 2
  launch_run "$outdir" --train_file "$file" --training_mode task \
    --use_lora True --lora_config "$ADAPTER_CONFIG" --block_size "$BLOCK_SIZE" \
    --per_device_train_batch_size "$TRAIN_BSZ" --gradient_accumulation_steps "$GRAD_ACC" \
    --learning_rate "$LR" --lr_scheduler_type "$LR_SCHEDULER" --warmup_ratio "$WARMUP_RATIO" \
    --max_grad_norm "$MAX_GRAD_NORM" --num_train_epochs "$EPOCHS" --max_steps "$MAX_STEPS" \
    --logging_steps "$LOGGING_STEPS" --seed "$SEED" --report_to "$REPORT_TO" \
    --do_train "${size_args[@]}" "$@"
}
train_adapter "$OUTDIR/task" "$TASK_FILE" "$@"
train_adapter "$OUTDIR/ref_source" "$OUTDIR/data/ref_$SOURCE_LANG.json" "$@"
train_adapter "$OUTDIR/ref_target" "$OUTDIR/data/ref_$TARGET_LANG.json" "$@"

echo "== 3. merge: task + $T * (ref_target - ref_source)"
python -m scripts.merge_adapters --task "$OUTDIR/task" --ref_target "$OUTDIR/ref_target" \
  --ref_source "$OUTDIR/ref_source" --t "$T" --out "$OUTDIR/merged" --overwrite \
  ${MERGE_METHOD:+--method "$MERGE_METHOD"} ${MERGE_RANK:+--rank "$MERGE_RANK"}

echo "== 4. evaluation in $TARGET_LANG of: $EVAL_ADAPTERS"
for name in $EVAL_ADAPTERS; do
  peft=() && [ "$name" != base ] && peft=(--peft_model_id "$OUTDIR/$name")
  out="$OUTDIR/eval/$name" && mkdir -p "$out"
  if [ -n "$MGSM_FILE" ]; then
    python -m scripts.eval_mgsm --data "$MGSM_FILE" --model_name_or_path "$MODEL_PATH" "${peft[@]}" \
      --batch_size "$EVAL_BSZ" --max_new_tokens "$MAX_NEW_TOKENS" ${MGSM_MAX_EXAMPLES:+--max_examples "$MGSM_MAX_EXAMPLES"} \
      --output_json "$out/mgsm_$TARGET_LANG.json" --predictions "$out/mgsm_$TARGET_LANG.predictions.jsonl"
  fi
  if [ -n "$MASSIVE_DIR" ]; then
    massive=(--lang "$TARGET_LANG" --partition "$MASSIVE_PARTITION" --data_dir "$MASSIVE_DIR"
             ${MASSIVE_MAX_EXAMPLES:+--max_examples "$MASSIVE_MAX_EXAMPLES"})
    python -m scripts.run_inference_massive --model_name_or_path "$MODEL_PATH" "${peft[@]}" "${massive[@]}" \
      --batch_size "$EVAL_BSZ" --output_file "$out/massive_$TARGET_LANG.predictions.jsonl"
    python -m scripts.eval_massive --pred_slots_file "$out/massive_$TARGET_LANG.predictions.jsonl" "${massive[@]}" \
      --output_json "$out/massive_$TARGET_LANG.json"
  fi
  if [ -n "$ICL_DATA_DIR" ]; then
    python -m scripts.eval_icl --model_name_or_path "$MODEL_PATH" "${peft[@]}" --data_dir "$ICL_DATA_DIR" --tasks "$ICL_TASKS" \
      --shots "$ICL_SHOTS" --prompt_lang "$ICL_PROMPT_LANG" --test_lang "$TARGET_LANG" --batch_size "$EVAL_BSZ" \
      --output_json "$out/icl_$TARGET_LANG.json"
  fi
done
echo "merged adapter in $OUTDIR/merged (merge_report.json beside it); metrics in $OUTDIR/eval/<adapter>/"
