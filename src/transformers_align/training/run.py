"""One training run from parsed arguments: load and align the model, read the data, train, save."""

import json
import logging
import os
from pathlib import Path

from transformers import EarlyStoppingCallback, set_seed

from transformers_align.data.features import AlignmentCollator, FeatureOptions
from transformers_align.data.jsonl import DataFormatError, read_json
from transformers_align.data.records import PAIRS, PARALLEL_TASK
from transformers_align.data.records import TASK as TASK_STREAM
from transformers_align.data.streams import build_streams
from transformers_align.modeling import loading, patch_model
from transformers_align.training.arguments import ArgumentError, DataArguments
from transformers_align.training.checkpoints import RUN_ARGS_FILE, prepare_output, run_arguments
from transformers_align.training.launch import check_world_size, silence_library_noise
from transformers_align.training.schedule import ALIGNMENT, STREAM_OF, TASK
from transformers_align.training.trainer import AlignmentTrainer

NEEDED = {  # what feeds each stream, for the refusal of data that lacks one the schedule needs
    TASK_STREAM: "task examples (prefix/text, prompt/completion or AFP records)",
    PAIRS: "parallel pairs: use rows with text_parallel_0/1 (contrastive_data_mode 2), AFP records or --alignment_file",
    PARALLEL_TASK: "parallel task rows (prefix, text and prefix_translated: docs/training_data.md)",
}

logger = logging.getLogger(__name__)


def load_tokenizer(model_args):
    return loading.load_tokenizer(model_args.tokenizer_name or model_args.model_name_or_path)


def load_model(model_args, alignment_args, training_args):
    model = loading.load_causal_lm(
        model_args.model_name_or_path, model_args.torch_dtype, model_args.attn_implementation
    )
    model.config.use_cache = False
    patch_model(model, **alignment_args.settings())
    if model_args.use_lora:
        model = wrap_with_adapter(model, model_args, training_args)
    elif model_args.lora_config or model_args.load_lora_from:
        raise ValueError("--lora_config / --load_lora_from need --use_lora")
    return model


def wrap_with_adapter(model, model_args, training_args):
    from peft import IA3Config, LoraConfig, PeftModel, get_peft_model

    if training_args.gradient_checkpointing:
        model.enable_input_require_grads()  # reentrant checkpointing needs an input that requires grad
    if model_args.load_lora_from:
        return PeftModel.from_pretrained(model, model_args.load_lora_from, is_trainable=True)
    if not model_args.lora_config:
        raise ValueError("--use_lora needs --lora_config (e.g. config/lora_config.json)")
    values = read_json(model_args.lora_config)
    kind = values.pop("peft_type", "LORA").upper()
    config_class = {"LORA": LoraConfig, "IA3": IA3Config}.get(kind)
    if config_class is None:
        raise ValueError(f"{model_args.lora_config}: peft_type {kind!r} is not supported; use LORA or IA3")
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = values.get("target_modules") or []
    if isinstance(targets, list) and not set(targets) & names:
        raise ValueError(
            f"{model_args.lora_config}: none of target_modules {targets} exists in this {model.config.model_type} "
            f"model; config/ has a file per architecture"
        )
    peft_model = get_peft_model(model, config_class(**values))
    peft_model.print_trainable_parameters()
    return peft_model


def build_training_data(tokenizer, data_args, schedule, files, training_args=None):
    """The streams that ``schedule`` trains on, read from ``files`` (and ``--alignment_file``), tokenized and checked.

    ``training_args`` given (training data): refuses what cannot train before any model is loaded:
    ``--streaming`` without ``--max_steps`` and a mode whose stream the data lacks. Without it (evaluation
    data) the streams of the mode that the files hold are read.
    """
    if not files:
        return None
    if data_args.streaming and training_args is not None and training_args.max_steps <= 0:
        raise ArgumentError(
            "--streaming reads the data as training goes, so the number of steps is unknown: pass --max_steps"
        )
    wanted, mode = schedule.streams_used(), schedule.mode
    options = FeatureOptions(block_size=data_args.block_size, pair_max_length=data_args.pair_max_length)
    streams = build_streams(
        files,
        DataArguments.split(data_args.alignment_file),
        sorted(wanted),
        tokenizer,
        options,
        schema=data_args.data_schema,
        num_proc=data_args.preprocessing_num_workers,
        streaming=data_args.streaming and training_args is not None,
        max_samples=data_args.max_train_samples if training_args is not None else data_args.max_eval_samples,
    )
    if training_args is None:
        return streams
    for objective in schedule.composed:
        stream = STREAM_OF[objective]
        if stream not in streams.streams:
            raise DataFormatError(f"{', '.join(files)}: mode {mode!r} needs {NEEDED[stream]}, but there are none")
    return streams


def check_contrastive_batch(training_args, gathered):
    """An InfoNCE batch of one pair has no negative: refuse per-device batches that make one."""
    pairs = training_args.alignment_batch_size * (training_args.world_size if gathered else 1)
    if pairs < 2:
        flag = "alignment" if training_args.per_device_alignment_batch_size else "train"
        raise ArgumentError(
            f"alignment needs at least 2 pairs per contrastive batch, but --per_device_{flag}_batch_size is "
            f"{training_args.alignment_batch_size}"
            + (f" on {training_args.world_size} processes" if gathered else "")
            + ": raise it"
            + ("" if gathered else " or pass --gather_negatives_across_ranks under torchrun")
        )


def check_data_mode(training_args, mode):
    data_mode = training_args.contrastive_data_mode
    if data_mode is None:
        return
    if data_mode not in (0, 2):
        raise ArgumentError(
            f"--contrastive_data_mode {data_mode}: supported are 0 (task rows) and 2 (task and pair per row)"
        )
    if data_mode == 0 and mode != TASK:
        raise ArgumentError(f"--contrastive_data_mode 0 has no pairs, but the training mode is {mode!r}")


def train(model_args, alignment_args, data_args, training_args, resume_args=None):
    """Run training end to end; returns the trainer (its state holds the log history). A diverged run raises
    ``safety.TrainingDiverged`` and saves no result.

    Before any model loads: the processes agree on the world size, the output folder is free (or is
    resumed or overwritten, as asked), and a checkpoint to resume from was made with these arguments.
    """
    if not (training_args.do_train or training_args.do_eval):
        raise ArgumentError("nothing to do: pass --do_train and/or --do_eval")
    schedule = training_args.schedule()
    mode = schedule.mode
    check_data_mode(training_args, mode)
    silence_library_noise()
    check_world_size(training_args)
    arguments = run_arguments(model_args, alignment_args, data_args, mode, training_args)
    checkpoint = prepare_output(training_args, arguments, resume_args)
    arguments_text = json.dumps(arguments, indent=2, default=str)
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False  # the collator emits exactly the model's keyword arguments
    if training_args.gradient_checkpointing and training_args.gradient_checkpointing_kwargs is None:
        training_args.gradient_checkpointing_kwargs = {"use_reentrant": False}
    if mode in ("alternate", ALIGNMENT) and training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = True  # alignment steps leave the blocks above L unused
    if ALIGNMENT in schedule.composed and training_args.do_train:
        check_contrastive_batch(training_args, alignment_args.gather_negatives_across_ranks)
    tokenizer = load_tokenizer(model_args)
    train_files, eval_files = DataArguments.split(data_args.train_file), DataArguments.split(data_args.validation_file)
    with training_args.main_process_first(desc="reading and tokenizing the data"):  # the others then read the cache
        train_set = (
            build_training_data(tokenizer, data_args, schedule, train_files, training_args)
            if training_args.do_train
            else None
        )
        eval_set = build_training_data(tokenizer, data_args, schedule, eval_files) if training_args.do_eval else None
    model = load_model(model_args, alignment_args, training_args)  # only once the data is known to be usable

    callbacks = []
    if data_args.patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.patience))
    trainer = AlignmentTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        tokenizer=tokenizer,
        data_collator=AlignmentCollator(tokenizer.pad_token_id),
        callbacks=callbacks,
        checkpoint_files={RUN_ARGS_FILE: arguments_text},
    )
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()
        trainer.save_state()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        if trainer.is_world_process_zero():
            Path(training_args.output_dir, RUN_ARGS_FILE).write_text(arguments_text)
    if training_args.do_eval and eval_set is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    return trainer


def configure_logging(training_args):
    level = training_args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
