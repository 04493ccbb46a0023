"""Output folders and checkpoints that are never lost, mixed or trusted blindly.

- A non-empty output folder is refused unless the run asks to overwrite it or to resume from it. An
  overwrite clears what a run of this library or its recipes wrote there (``RUN_OUTPUTS``: model, adapter,
  checkpoints, metrics, reports, logs), so nothing of the earlier run can be read as this one's result; a
  file it does not know (the user's own) makes it refuse instead, and nothing is removed.
- No output folder is, or contains, one of the run's inputs (``transformers_align.paths``).
- A checkpoint is written into a hidden staging folder and renamed into place once complete, so a
  kill during a save leaves nothing that ``--resume_from_checkpoint auto`` would pick.
- Resuming checks that the checkpoint was made with the same run arguments (seed, learning rate,
  data, model, alignment settings, ...), and that none of its pickled files (optimizer, scheduler, RNG
  state, training arguments, DeepSpeed's) would run code when read; the RNG state is also read that way.

``scripts.check_output_dir`` runs the folder check alone, before the launcher touches the folder.
"""

import fnmatch
import json
import logging
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from transformers_align.errors import UserError
from transformers_align.modeling.gguf_checkpoint import BASE_MODEL_RECORD
from transformers_align.paths import refuse_output_over_inputs

logger = logging.getLogger(__name__)

RUN_ARGS_FILE = "alignment_run_args.json"
LAUNCHER_LOG = "train.log"  # the shell launcher appends its log here; alone it does not make a folder an output
# The shell launcher names the log it is writing, so that an overwrite does not delete it from under `tee`.
LIVE_LOG_VARIABLE = "TRANSFORMERS_ALIGN_LIVE_LOG"
STAGING_DIR = ".staging"  # hidden: the Trainer's own checkpoint search (checkpoint-N) never sees it
REPORT_FILE = "alignment_report.json"  # scripts.report_alignment_run's report, written into the run folder
# Everything a training run (Trainer, PEFT, tokenizer, this library) or a recipe (train_*.sh) writes into its
# output folder, as glob patterns.
RUN_OUTPUTS = (
    # model or adapter (PEFT writes a model card, README.md), tokenizer
    "adapter_model.safetensors",
    "adapter_model.bin",
    "adapter_config.json",
    "README.md",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model*.bin",
    "pytorch_model.bin.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "merges.txt",
    # the run's state, metrics, records and checkpoints
    "training_args.bin",
    "trainer_state.json",
    "*_results.json",
    RUN_ARGS_FILE,
    BASE_MODEL_RECORD,
    "checkpoint-*",
    STAGING_DIR,
    "runs",  # TensorBoard's logging_dir
    # the recipes' logs and reports
    LAUNCHER_LOG,
    REPORT_FILE,
    "icl_results.json",
    "icl.log",
)
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
_AUTO = ("auto", "last", "true", "True")

# The training arguments that decide what a resumed run computes; the others (logging, saving, evaluation,
# output paths) may change between an interrupted run and its resumption.
TRAJECTORY_ARGUMENTS = (
    "seed",
    "data_seed",
    "learning_rate",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_ratio",
    "warmup_steps",
    "optim",
    "optim_args",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "world_size",
    "bf16",
    "fp16",
    "group_by_length",
    "label_smoothing_factor",
)
# The globals beyond torch's weights-only set that DeepSpeed's ZeRO checkpoints name (found with
# torch.serialization.get_unsafe_globals_in_checkpoint on checkpoints of deepspeed 0.19.8,
# tests/training/test_distributed.py).
DEEPSPEED_GLOBALS = frozenset(
    {
        "deepspeed.runtime.fp16.loss_scaler.LossScaler",
        "deepspeed.runtime.zero.config.ZeroStageEnum",
        "deepspeed.utils.tensor_fragment.fragment_address",
    }
)
# The packages whose classes a pickled TrainingArguments names (its own class, its enums, accelerate's state).
TRAINING_ARGS_PACKAGES = ("transformers.", "transformers_align.", "accelerate.", "deepspeed.", "torch.")
# Data arguments that only concern evaluation or are accepted and unused.
_DATA_NOT_COMPARED = ("validation_file", "max_eval_samples", "patience", "streaming", "preprocessing_num_workers")


class OutputFolderError(UserError):
    """A run would write over, or resume from, the wrong folder; the message is one line for the user."""


@dataclass
class ResumeArguments:
    resume_with_changed_arguments: bool = field(
        default=False,
        metadata={
            "help": "Resume even if the checkpoint was made with other run arguments (seed, lr, data, model...)."
        },
    )


def run_arguments(model_args, alignment_args, data_args, mode, training_args) -> dict:
    """Everything that describes a run, as saved beside every checkpoint and the final model."""
    training = training_args.to_dict()
    training["world_size"] = training_args.world_size
    return {
        "model": asdict(model_args),
        "alignment": asdict(alignment_args),
        "data": asdict(data_args),
        "training_mode": mode,
        "training": training,
    }


def _comparable(arguments: dict) -> dict:
    flat = {f"model.{k}": v for k, v in arguments.get("model", {}).items()}
    flat.update({f"alignment.{k}": v for k, v in arguments.get("alignment", {}).items()})
    flat.update({f"data.{k}": v for k, v in arguments.get("data", {}).items() if k not in _DATA_NOT_COMPARED})
    training = arguments.get("training", {})
    flat.update({f"training.{k}": training.get(k) for k in TRAJECTORY_ARGUMENTS})
    flat["training_mode"] = arguments.get("training_mode")
    return json.loads(json.dumps(flat, default=str))  # compare as saved: tuples become lists, paths strings


def _setting_defaults() -> dict:
    """``alignment.<name>: default`` of every objective's settings. A setting that a later version added (a new
    objective's) is absent from an earlier run's record; at its default it changes nothing that run did."""
    from transformers_align.objectives.registry import settings_classes

    return {f"alignment.{f.name}": f.default for kind in settings_classes() for f in fields(kind)}


def changed_arguments(saved: dict, current: dict) -> list:
    """``name: saved -> current`` for every run argument that differs (a setting the saved record predates
    counts as unchanged at its default)."""
    before, now, defaults = _comparable(saved), _comparable(current), _setting_defaults()
    return [
        f"{name}: {before.get(name)!r} -> {now.get(name)!r}"
        for name in sorted(set(before) | set(now))
        if before.get(name) != now.get(name)
        and not (name not in before and name in defaults and now.get(name) == defaults[name])
    ]


def is_output_in_use(output_dir) -> bool:
    folder = Path(output_dir)
    return folder.is_dir() and any(entry.name != LAUNCHER_LOG for entry in folder.iterdir())


def previous_run_entries(output_dir) -> "tuple[list, list]":
    """The entries of ``output_dir`` that a run writes (``RUN_OUTPUTS``), and the others, by name."""
    folder = Path(output_dir)
    names = sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []
    known = [name for name in names if any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_OUTPUTS)]
    return known, [name for name in names if name not in known]


def check_output_dir(output_dir, overwrite: bool, resume, run_folder: bool = True) -> None:
    """Refuse a non-empty output folder unless the run overwrites it or resumes from it, and an overwrite
    of a ``run_folder`` that holds files no run writes (False: a recipe's folder of run folders and data)."""
    if resume:
        return
    if overwrite:
        unknown = previous_run_entries(output_dir)[1] if run_folder else []
        if unknown:
            listed = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
            raise OutputFolderError(
                f"output folder {output_dir} holds {listed}, which no training run writes: overwriting clears "
                f"only a previous run's files; move those out or choose another folder (nothing was removed)"
            )
        return
    if not is_output_in_use(output_dir):
        return
    raise OutputFolderError(
        f"output folder {output_dir} is not empty: choose another folder, resume from it "
        f"(--resume_from_checkpoint auto; RESUME=auto for the scripts) or overwrite it "
        f"(--overwrite_output_dir True; OVERWRITE=1 for the scripts)"
    )


def checkpoints_in(output_dir) -> list:
    """Complete checkpoints of ``output_dir``, oldest first (a checkpoint is complete once renamed into place)."""
    folder = Path(output_dir)
    found = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = _CHECKPOINT_NAME.match(entry.name)
        if match and entry.is_dir() and (entry / "trainer_state.json").is_file():
            found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


def remove_previous_run(output_dir) -> None:
    """On overwrite: everything the previous run wrote goes (its checkpoints, which a later ``auto`` resume
    would pick, its adapter, metrics, reports and log), except the log the launcher is writing for this run."""
    folder = Path(output_dir)
    live_log = os.environ.get(LIVE_LOG_VARIABLE)
    stale = [folder / name for name in previous_run_entries(folder)[0]]
    stale = [entry for entry in stale if not (live_log and entry.resolve() == Path(live_log).resolve())]
    for entry in stale:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if stale:
        logger.warning("overwriting %s: removed the previous run's %s", output_dir, ", ".join(e.name for e in stale))


def run_inputs(arguments: dict) -> dict:
    """The files and folders a run reads, under their flags (for ``refuse_output_over_inputs``)."""
    from transformers_align.training.arguments import DataArguments

    model, data = arguments.get("model", {}), arguments.get("data", {})
    deepspeed = arguments.get("training", {}).get("deepspeed")  # a config file, or a dict given in Python
    inputs = {f"--{name}": model.get(name) for name in ("model_name_or_path", "tokenizer_name", "lora_config")}
    inputs["--load_lora_from"] = model.get("load_lora_from")
    for name in ("train_file", "validation_file", "alignment_file"):
        inputs[f"--{name}"] = DataArguments.split(data.get(name))
    inputs["--deepspeed"] = deepspeed if isinstance(deepspeed, str) else None
    return inputs


def resolve_checkpoint(output_dir, requested) -> "str | None":
    """The checkpoint folder to resume from: ``auto`` finds the last complete one, a path must be a checkpoint."""
    if requested in (None, "", "false", "False"):
        return None
    if requested in _AUTO:
        found = checkpoints_in(output_dir)
        if not found:
            logger.warning(
                "--resume_from_checkpoint auto: no complete checkpoint in %s, starting from scratch", output_dir
            )
            return None
        logger.warning("--resume_from_checkpoint auto: resuming from %s", found[-1])
        return str(found[-1])
    if not (Path(requested) / "trainer_state.json").is_file():
        reason = "no such folder" if not Path(requested).exists() else "no trainer_state.json in it"
        raise OutputFolderError(f"--resume_from_checkpoint {requested}: not a complete checkpoint ({reason})")
    return str(requested)


def check_same_run(checkpoint, arguments: dict, allow_changes: bool) -> None:
    """Refuse to resume a checkpoint made with other run arguments, unless allowed."""
    saved_file = Path(checkpoint) / RUN_ARGS_FILE
    hint = "pass --resume_with_changed_arguments True to resume anyway"
    if not saved_file.is_file():
        problem = f"{saved_file} is missing, so the checkpoint cannot be checked against this run's arguments"
    else:
        changes = changed_arguments(json.loads(saved_file.read_text(encoding="utf-8")), arguments)
        problem = f"{checkpoint} was made with other run arguments ({'; '.join(changes)})" if changes else None
    if problem and allow_changes:
        logger.warning("%s; resuming anyway (--resume_with_changed_arguments)", problem)
    elif problem:
        raise OutputFolderError(f"{problem}: {hint}")


def _global_name(value) -> str:
    return f"{value.__module__}.{value.__qualname__}"


def _refusal(files, holds: str, detail: str) -> OutputFolderError:
    return OutputFolderError(
        f"refused to read {files}: it holds more than {holds} ({detail}); "
        f"it was not made by this library, or has been tampered with"
    )


def check_pickled_files(checkpoint) -> None:
    """Before any model loads: each file of the checkpoint that a resumed run unpickles (``optimizer.pt``,
    ``scheduler.pt``, ``rng_state*.pth``) or that records the run (``training_args.bin``) names only what such
    a file holds. A file that names anything else is refused with its name (torch's weights-only reader would
    stop at it with an UnpicklingError traceback); the scan executes nothing."""
    import pickle

    import torch

    rng_globals = {_global_name(value) for value in rng_state_globals()}
    expected = (
        ("optimizer.pt", "an optimizer state", lambda name: False),
        ("scheduler.pt", "a learning-rate scheduler state", lambda name: False),
        ("rng_state*.pth", "an RNG state", rng_globals.__contains__),
        ("training_args.bin", "training arguments", lambda name: name.startswith(TRAINING_ARGS_PACKAGES)),
    )
    for pattern, holds, allowed in expected:
        for path in sorted(Path(checkpoint).glob(pattern)):
            try:
                names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
            except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as error:
                raise OutputFolderError(f"refused to read {path}: not a readable torch file ({error})") from None
            unexpected = sorted(name for name in names if not allowed(name))
            if unexpected:
                raise _refusal(path, holds, f"it names {', '.join(unexpected)}")


def check_deepspeed_files(checkpoint) -> None:
    """DeepSpeed reads its own checkpoint files with ``weights_only=False`` (deepspeed 0.19's
    ``TorchCheckpointEngine.load``), which runs whatever callables a pickle names. Before it does, every
    global each file names must be one that DeepSpeed's checkpoints hold; the scan executes nothing."""
    import torch

    for path in sorted(Path(checkpoint).glob("global_step*/*.pt")):
        unexpected = sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path))) - DEEPSPEED_GLOBALS)
        if unexpected:
            raise OutputFolderError(
                f"refused to resume from {path}: DeepSpeed would unpickle it whole, and it names "
                f"{', '.join(unexpected)}, which no DeepSpeed checkpoint holds"
            )


def check_output(training_args, arguments: dict) -> None:
    """The output folder is none of the run's inputs and may take this run (free, resumed or overwritten);
    nothing is removed."""
    output_dir = training_args.output_dir
    refuse_output_over_inputs({"--output_dir": output_dir}, run_inputs(arguments))
    if training_args.do_train:
        check_output_dir(output_dir, training_args.overwrite_output_dir, training_args.resume_from_checkpoint)


def prepare_output(training_args, arguments: dict, resume_args=None) -> "str | None":
    """Check the output folder and resolve the checkpoint to resume from, before any model loads.

    Every process checks (so each fails alike); only the main process removes a previous run's files.
    """
    resume_args = resume_args or ResumeArguments()
    output_dir, requested = training_args.output_dir, training_args.resume_from_checkpoint
    check_output(training_args, arguments)
    checkpoint = resolve_checkpoint(output_dir, requested)
    if checkpoint is not None:
        check_same_run(checkpoint, arguments, resume_args.resume_with_changed_arguments)
        check_pickled_files(checkpoint)
        check_deepspeed_files(checkpoint)
    elif training_args.do_train and training_args.overwrite_output_dir:
        with training_args.main_process_first(desc="removing the previous run's checkpoints"):
            if training_args.should_save:
                remove_previous_run(output_dir)
    training_args.resume_from_checkpoint = checkpoint
    return checkpoint


@contextmanager
def staged_checkpoint(trainer, trial, extra_files: dict):
    """Around the stock ``_save_checkpoint``: the Trainer writes into ``<run>/.staging/checkpoint-N``
    (``trainer.checkpoint_stage``), then every process waits and the main one renames it into ``<run>``.
    ``extra_files`` (name -> text) are written into the checkpoint before it becomes visible."""
    run_dir = Path(trainer._get_output_dir(trial=trial))
    name = f"checkpoint-{trainer.state.global_step}"
    stage = run_dir / STAGING_DIR
    args = trainer.args
    if args.should_save and stage.exists():
        shutil.rmtree(stage)  # what a run killed while saving left: complete checkpoints never stay here
    trainer.accelerator.wait_for_everyone()
    trainer.checkpoint_stage = str(stage)
    try:
        yield
    finally:
        trainer.checkpoint_stage = None
    staged, final = stage / name, run_dir / name
    if args.should_save:
        for file_name, text in extra_files.items():
            (staged / file_name).write_text(text, encoding="utf-8")
        if trainer.state.best_model_checkpoint == str(staged):  # the stock code recorded the staging path
            trainer.state.best_model_checkpoint = str(final)
            trainer.state.save_to_json(str(staged / "trainer_state.json"))
    trainer.accelerator.wait_for_everyone()
    for publisher in (args.process_index == 0, args.local_process_index == 0):  # then nodes without a shared disk
        if publisher and staged.is_dir():
            if final.exists():
                shutil.rmtree(final)
            os.replace(staged, final)
        trainer.accelerator.wait_for_everyone()
    if args.should_save:
        stage.rmdir()  # empty now: every node renamed its part
        trainer._rotate_checkpoints(use_mtime=False, output_dir=str(run_dir))


def rng_state_globals() -> list:
    """The only non-tensor types a Trainer RNG state file holds: NumPy's ``get_state()`` array and its dtype."""
    import numpy as np

    state = np.random.get_state()[1]
    return [state.__reduce__()[0], np.ndarray, np.dtype, type(state.dtype)]


@contextmanager
def reading_rng_state(checkpoint):
    """Around the stock ``_load_rng_state``: ``torch.load`` stays ``weights_only`` and allows NumPy's RNG
    state types only; a file that asks for anything else is refused with its name, and nothing of it runs."""
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(rng_state_globals()):
            yield
    except pickle.UnpicklingError as error:
        files = ", ".join(sorted(str(p) for p in Path(checkpoint).glob("rng_state*.pth")))
        raise _refusal(files, "an RNG state", str(error).strip().splitlines()[-1]) from None
