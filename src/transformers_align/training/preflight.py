"""One validation pass over a training run's arguments, before any data is read or any weights load.

Each mistake ends the run with one line naming the flag or file, its value and what is allowed (a
``UserError``): the modes and their flags, the input paths (files and folders that must exist), the output
folder, the model folder and its ``config.json``, the alignment settings against the model's depth, and the
adapter config against the architecture's modules. The model is built on the meta device for the last two
(its module tree without weights: cheap even for a large model). What needs the data (a stream too small
for one global batch) is checked once the data is read, still before the model loads (``training.run``).
"""

import re
from pathlib import Path

from transformers_align.data.jsonl import read_json
from transformers_align.data.records import SCHEMAS
from transformers_align.modeling import loading
from transformers_align.modeling.registry import decoder_layout, num_blocks
from transformers_align.modeling.settings import AlignmentSettings
from transformers_align.objectives.registry import write_settings
from transformers_align.training.arguments import ArgumentError, DataArguments
from transformers_align.training.checkpoints import check_output, run_arguments
from transformers_align.training.schedule import ALIGNMENT

ATTENTION_IMPLEMENTATIONS = ("auto", "eager", "sdpa", "flash_attention_2")
ADAPTER_TYPES = ("LORA", "IA3")
ALL_LINEAR = "all-linear"  # PEFT's shorthand for every linear layer but the output head


def check_run(model_args, alignment_args, data_args, training_args):
    """Refuse, in one line, any argument of the run that cannot work; returns the run's ``Schedule`` when all can."""
    schedule = check_modes(training_args)
    mode = schedule.mode
    check_paths(model_args, data_args, training_args)
    # checked again, and an overwritten run's files removed, once everything is valid (prepare_output)
    check_output(training_args, run_arguments(model_args, alignment_args, data_args, mode, training_args))
    if model_args.attn_implementation not in ATTENTION_IMPLEMENTATIONS:
        raise ArgumentError(
            f"--attn_implementation {model_args.attn_implementation}: choose one of "
            f"{', '.join(ATTENTION_IMPLEMENTATIONS)}"
        )
    loading.resolve_dtype(model_args.torch_dtype)
    config = loading.read_config(model_args.model_name_or_path)
    try:
        decoder_layout(config)
    except ValueError as error:
        raise loading.ModelLoadingError(f"--model_name_or_path {model_args.model_name_or_path}: {error}") from None
    model = loading.empty_causal_lm(config)
    # What patch_model resolves once the model is loaded (the settings saved in its config under the flags)
    alignment_settings = write_settings(config, alignment_args.settings())  # the other objectives', validated
    AlignmentSettings.from_config(config, **alignment_settings).resolved(num_blocks(model))
    check_adapter(model_args, model)
    if ALIGNMENT in schedule.composed and training_args.do_train:
        check_contrastive_batch(training_args, alignment_args.gather_negatives_across_ranks)
    return schedule


def check_modes(training_args):
    """The run's ``Schedule``, once the flags that choose what to run agree with each other."""
    if not (training_args.do_train or training_args.do_eval):
        raise ArgumentError("nothing to do: pass --do_train and/or --do_eval")
    schedule = training_args.schedule()
    check_data_mode(training_args, schedule)
    return schedule


def check_data_mode(training_args, schedule):
    data_mode = training_args.contrastive_data_mode
    if data_mode is None:
        return
    if data_mode not in (0, 2):
        raise ArgumentError(
            f"--contrastive_data_mode {data_mode}: supported are 0 (task rows) and 2 (task and pair per row)"
        )
    if data_mode == 0 and ALIGNMENT in schedule.composed:
        raise ArgumentError(f"--contrastive_data_mode 0 has no pairs, but the training mode is {schedule.mode!r}")


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


def _require(flag: str, value: str, kind: str) -> None:
    path = Path(value).expanduser()
    found = path.is_file() if kind == "file" else path.is_dir()
    if not found:
        reason = f"not a {kind}" if path.exists() else "no such file" if kind == "file" else "no such folder"
        raise ArgumentError(f"{flag} {value}: {reason}; give an existing {kind}")


def check_paths(model_args, data_args, training_args) -> None:
    """Every input the run reads exists and is a file or a folder as needed; the output folder is no file."""
    if data_args.streaming and training_args.do_train and training_args.max_steps <= 0:
        raise ArgumentError(
            "--streaming reads the data as training goes, so the number of steps is unknown: pass --max_steps"
        )
    if training_args.do_train and not DataArguments.split(data_args.train_file):
        raise ArgumentError("--train_file is empty: give one or more training files, comma-separated")
    if data_args.data_schema not in ("auto", *SCHEMAS):
        raise ArgumentError(f"--data_schema {data_args.data_schema}: choose one of auto, {', '.join(SCHEMAS)}")
    for flag in ("train_file", "validation_file", "alignment_file"):
        for path in DataArguments.split(getattr(data_args, flag)):
            _require(f"--{flag}", path, "file")
    if model_args.lora_config:
        _require("--lora_config", model_args.lora_config, "file")
    if model_args.load_lora_from:
        _require("--load_lora_from", model_args.load_lora_from, "folder")
        _require("--load_lora_from", str(Path(model_args.load_lora_from) / "adapter_config.json"), "file")
    if model_args.tokenizer_name and loading.looks_local(model_args.tokenizer_name):
        _require("--tokenizer_name", model_args.tokenizer_name, "folder")
    if Path(training_args.output_dir).expanduser().is_file():
        raise ArgumentError(f"--output_dir {training_args.output_dir}: is a file; give a folder (new or empty)")


def read_adapter_config(path: str):
    """The PEFT config (LoRA, or IA3 with ``"peft_type": "IA3"``) that the JSON file ``path`` describes."""
    from peft import IA3Config, LoraConfig

    values = read_json(path)
    if not isinstance(values, dict):
        raise ArgumentError(f"--lora_config {path}: expected a JSON object of PEFT config fields")
    kind = str(values.pop("peft_type", "LORA")).upper()
    config_class = {"LORA": LoraConfig, "IA3": IA3Config}.get(kind)
    if config_class is None:
        raise ArgumentError(
            f"--lora_config {path}: peft_type {kind!r} is not supported; use {' or '.join(ADAPTER_TYPES)}"
        )
    try:
        return config_class(**values)
    except (TypeError, ValueError) as error:
        raise ArgumentError(f"--lora_config {path}: not a valid {kind} config ({error})") from None


def _matches(target: str, module_name: str) -> bool:
    """PEFT's rule for one name of a ``target_modules`` list: the module's name, or its last dotted parts."""
    return module_name == target or module_name.endswith(f".{target}")


def check_adapter(model_args, model) -> None:
    """``--lora_config`` goes with ``--use_lora``, and every module it targets exists in the architecture."""
    if not model_args.use_lora:
        if model_args.lora_config or model_args.load_lora_from:
            flag = "--lora_config" if model_args.lora_config else "--load_lora_from"
            raise ArgumentError(f"{flag} is given without --use_lora: pass --use_lora True to train an adapter")
        return
    if model_args.load_lora_from:
        return  # the adapter folder brings its own config
    if not model_args.lora_config:
        raise ArgumentError("--use_lora needs --lora_config (e.g. config/lora_config.json)")
    config = read_adapter_config(model_args.lora_config)
    targets = config.target_modules
    names = [name for name, _ in model.named_modules() if name]
    if isinstance(targets, str):
        if targets != ALL_LINEAR and not any(re.fullmatch(targets, name) for name in names):
            raise ArgumentError(
                f"--lora_config {model_args.lora_config}: target_modules {targets!r} matches no module of this "
                f"{model.config.model_type} model; config/ has a file per architecture"
            )
        return
    missing = sorted(target for target in targets or () if not any(_matches(target, name) for name in names))
    if missing:
        leaves = sorted(
            {
                name.rsplit(".", 1)[-1]
                for name, module in model.named_modules()
                if getattr(module, "weight", None) is not None and module.weight.dim() == 2  # Linear, Conv1D
            }
        )
        raise ArgumentError(
            f"--lora_config {model_args.lora_config}: target_modules {', '.join(missing)} do not exist in this "
            f"{model.config.model_type} model (its layers: {', '.join(leaves)}); config/ has a file per architecture"
        )
