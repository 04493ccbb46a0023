"""One training run from parsed arguments: load and align the model, read the data, train, save."""

import json
import logging
import os
from pathlib import Path

from transformers import EarlyStoppingCallback, set_seed

from transformers_align.data.features import AlignmentCollator, FeatureOptions
from transformers_align.data.jsonl import DataFormatError
from transformers_align.data.records import PAIRS, PARALLEL_TASK
from transformers_align.data.records import TASK as TASK_STREAM
from transformers_align.data.streams import build_streams
from transformers_align.modeling import loading, patch_model
from transformers_align.modeling.gguf_checkpoint import record_base_model
from transformers_align.training.arguments import DataArguments
from transformers_align.training.batches import per_device_batches
from transformers_align.training.checkpoints import RUN_ARGS_FILE, prepare_output, run_arguments
from transformers_align.training.launch import check_world_size, find_unused_parameters, silence_library_noise
from transformers_align.training.preflight import check_run, read_adapter_config
from transformers_align.training.schedule import STREAM_OF
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
    return model


def wrap_with_adapter(model, model_args, training_args):
    """The model with a new adapter (``--lora_config``, checked by ``preflight``) or a trained one."""
    from peft import PeftModel, get_peft_model

    if training_args.gradient_checkpointing:
        model.enable_input_require_grads()  # reentrant checkpointing needs an input that requires grad
    if model_args.load_lora_from:
        return PeftModel.from_pretrained(model, model_args.load_lora_from, is_trainable=True)
    peft_model = get_peft_model(model, read_adapter_config(model_args.lora_config))
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
    check_stream_sizes(streams, training_args, wanted)
    return streams


def check_stream_sizes(streams, training_args, wanted) -> None:
    """Each stream that the mode trains on fills one global batch (per device × processes, as ``training.batches``
    cuts it), so that the run fails here, before the model loads, rather than when training starts."""
    per_device = per_device_batches(
        training_args.train_batch_size, training_args.alignment_batch_size * max(1, training_args.n_gpu)
    )
    for name in sorted(wanted):
        stream = streams.streams[name]
        needed = per_device[name] * training_args.world_size
        if stream.streaming or len(stream) >= needed:
            continue
        removed = f" (after removing {stream.repeats_removed} repeated ones)" if stream.repeats_removed else ""
        own_flag = name == PAIRS and training_args.per_device_alignment_batch_size
        flag = "--per_device_alignment_batch_size" if own_flag else "--per_device_train_batch_size"
        processes = f"{training_args.world_size} process" + ("es" if training_args.world_size > 1 else "")
        raise DataFormatError(
            f"{stream.sources}: the {name} stream has {len(stream)} example(s){removed}, fewer than one global batch "
            f"({per_device[name]} per device × {processes}): add data or lower {flag}"
        )


def train(model_args, alignment_args, data_args, training_args, resume_args=None):
    """Run training end to end; returns the trainer (its state holds the log history). A diverged run raises
    ``safety.TrainingDiverged`` and saves no result.

    Before any data or model loads: every argument is valid (``preflight``), the processes agree on the world
    size, the output folder is free (or is resumed or overwritten, as asked), and a checkpoint to resume from
    was made with these arguments and holds nothing that would run code.
    """
    schedule = check_run(model_args, alignment_args, data_args, training_args)
    mode = schedule.mode
    silence_library_noise()
    check_world_size(training_args)
    arguments = run_arguments(model_args, alignment_args, data_args, mode, training_args)
    checkpoint = prepare_output(training_args, arguments, resume_args)
    arguments_text = json.dumps(arguments, indent=2, default=str)
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False  # the collator emits exactly the model's keyword arguments
    if training_args.gradient_checkpointing and training_args.gradient_checkpointing_kwargs is None:
        training_args.gradient_checkpointing_kwargs = {"use_reentrant": False}
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = find_unused_parameters(mode, schedule.composed)
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
            record_base_model(training_args.output_dir, model_args.model_name_or_path)
    if training_args.do_eval and eval_set is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    return trainer


def configure_logging(training_args):
    level = training_args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
