"""Command-line configuration of a training run: model, alignment and data arguments (HfArgumentParser dataclasses).

The names of mid-align's ``run_clm_lora.py`` keep working; ``AlignmentTrainingArguments`` extends the standard
``TrainingArguments`` with the schedule of objectives.
"""

from dataclasses import dataclass, field
from typing import List, Optional

from transformers import TrainingArguments

from transformers_align.data.features import FeatureOptions
from transformers_align.errors import UserError
from transformers_align.extras import require
from transformers_align.objectives.registry import OBJECTIVES, settings_classes
from transformers_align.training.schedule import MODES, Schedule, mode_from_reference_flags


class ArgumentError(UserError):
    """Arguments that cannot work together; the message says which and what to change."""


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={
            "help": "Local model folder (or hub id where a hub is reachable).",
            "aliases": ["--model", "--model-name"],
        }
    )
    tokenizer_name: Optional[str] = field(default=None, metadata={"help": "Tokenizer folder; default: the model's."})
    torch_dtype: Optional[str] = field(
        default=None, metadata={"help": "Weights dtype: bfloat16, float16, float32 or auto; default float32."}
    )
    attn_implementation: str = field(
        default="auto",
        metadata={"help": "eager, sdpa, flash_attention_2, or auto: flash-attn when installed on a GPU, else sdpa."},
    )
    use_lora: bool = field(default=False, metadata={"help": "Train a PEFT adapter instead of all weights."})
    lora_config: Optional[str] = field(
        default=None,
        metadata={"help": "PEFT adapter config JSON (LoRA, or IA3 with \"peft_type\": \"IA3\"); needs --use_lora."},
    )
    load_lora_from: Optional[str] = field(default=None, metadata={"help": "Start from this trained adapter folder."})


@dataclass
class AlignmentArguments(*reversed(settings_classes())):
    """Every objective's settings (alignment: the loss, its layer, the pooling; consistency: its direction, ...),
    saved into the model config."""

    def settings(self) -> dict:
        return {name: getattr(self, name) for settings in settings_classes() for name in settings.names()}


@dataclass
class AlignmentTrainingArguments(TrainingArguments):
    """The stock ``TrainingArguments`` and how the objectives are scheduled; saved with every checkpoint
    (``training_args.bin``) like the rest, so a run made through the Python API records its mode too."""

    training_mode: Optional[str] = field(
        default=None,
        metadata={"help": f"One of {', '.join(MODES)}. Default: from mid-align's flags below (none of them: joint)."},
    )
    alignment_steps_per_task_step: int = field(
        default=1, metadata={"help": "alternate mode: alignment micro-steps after each task micro-step (mid-align: 1)."}
    )
    objectives: Optional[str] = field(
        default=None,
        metadata={
            "help": f"alternate / joint: the objectives composed, comma-separated, from {', '.join(OBJECTIVES)}. "
            "Default: task,alignment."
        },
    )
    steps_per_objective: Optional[str] = field(
        default=None,
        metadata={
            "help": "alternate: micro-steps of each of --objectives in turn, comma-separated (e.g. 1,2). Default: 1 "
            "each, alignment's --alignment_steps_per_task_step."
        },
    )
    per_device_alignment_batch_size: Optional[int] = field(
        default=None,
        metadata={
            "help": "Pairs per device in an alignment micro-batch (the InfoNCE negatives); default: "
            "per_device_train_batch_size. Pairs are short, so more of them fit than task examples."
        },
    )
    alternate_training: bool = field(
        default=False, metadata={"help": "mid-align: alternate task and alignment micro-batches."}
    )
    only_train_language_modeling: bool = field(
        default=False, metadata={"help": "mid-align's baseline: task loss only."}
    )
    only_train_contrastive: bool = field(default=False, metadata={"help": "Alignment loss only."})
    stall_warning_steps: int = field(
        default=20,
        metadata={
            "help": "Warn once when the gradient norm stays 0 with every loss at chance (task: ln of the vocabulary "
            "size, alignment: ln of the contrastive batch) for this many optimizer steps in a row (at most half "
            "of --max_steps); 0: never."
        },
    )
    contrastive_data_mode: Optional[int] = field(
        default=None,
        metadata={"help": "mid-align: 0 = task rows only, 2 = task and pair in each row. Default: read from the data."},
    )

    def __post_init__(self):
        if self.deepspeed:  # before the stock arguments read the config with DeepSpeed's own classes
            require("deepspeed", f"--deepspeed {self.deepspeed}")
        super().__post_init__()

    def resolved_mode(self) -> str:
        """``--training_mode``, or the mode mid-align's flags ask for; both given, they must agree."""
        reference_flags = {
            "--alternate_training": self.alternate_training,
            "--only_train_language_modeling": self.only_train_language_modeling,
            "--only_train_contrastive": self.only_train_contrastive,
        }
        try:
            from_flags = mode_from_reference_flags(*reference_flags.values())
        except ValueError as error:
            raise ArgumentError(str(error)) from None
        if self.training_mode is None:
            return from_flags
        if self.training_mode not in MODES:
            raise ArgumentError(f"--training_mode {self.training_mode!r}: choose one of {', '.join(MODES)}")
        given = [flag for flag, value in reference_flags.items() if value]
        if given and from_flags != self.training_mode:
            raise ArgumentError(
                f"--training_mode {self.training_mode} contradicts {given[0]} (mode {from_flags!r}): give one of them"
            )
        return self.training_mode

    @property
    def alignment_batch_size(self) -> int:
        """Pairs per device in an alignment micro-step: ``per_device_alignment_batch_size``, else the task batch."""
        return self.per_device_alignment_batch_size or self.per_device_train_batch_size

    def schedule(self) -> Schedule:
        names = DataArguments.split(self.objectives) or None
        steps = DataArguments.split(self.steps_per_objective) or None
        mode = self.resolved_mode()  # its own errors name their flags
        try:
            if steps is not None and not all(count.isdigit() for count in steps):
                raise ValueError(f"steps_per_objective {self.steps_per_objective}: counts are whole numbers")
            steps = [int(count) for count in steps] if steps else None
            return Schedule(
                mode,
                self.alignment_steps_per_task_step,
                tuple(names) if names else None,
                tuple(steps) if steps else None,
            )
        except ValueError as error:
            raise ArgumentError(f"--{error}") from None


@dataclass
class DataArguments:
    train_file: str = field(metadata={"help": "Training records, comma-separated JSON / JSON Lines files."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "Validation records, comma-separated."})
    alignment_file: Optional[str] = field(
        default=None,
        metadata={
            "help": "Parallel pairs (TSV, or JSON/JSONL with text_parallel_0/1 and optionally text_negative), "
            "comma-separated; added to the pair stream, which is sampled on its own "
            "(every pair is used once per pair epoch)."
        },
    )
    data_schema: str = field(
        default="auto", metadata={"help": "task, task+pairs, afp, pairs, or auto (from the first record's fields)."}
    )
    block_size: int = field(
        default=FeatureOptions.block_size,
        metadata={"help": "Longest task sequence in tokens; longer ones are truncated."},
    )
    pair_max_length: Optional[int] = field(
        default=None, metadata={"help": "Longest pair sentence in tokens; default block_size."}
    )
    max_train_samples: Optional[int] = field(
        default=None, metadata={"help": "Use only the first N examples of each training stream."}
    )
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N validation rows."})
    patience: Optional[int] = field(
        default=None,
        metadata={"help": "Early stopping after N evaluations without improvement (needs load_best_model_at_end)."},
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read, tokenize and batch the training files as training goes (files larger than memory); needs "
            "--max_steps. Without it the files are tokenized once into an on-disk cache (HF_DATASETS_CACHE)."
        },
    )
    preprocessing_num_workers: Optional[int] = field(
        default=None, metadata={"help": "Processes that tokenize the data (datasets.map num_proc); default: one."}
    )

    @staticmethod
    def split(value: Optional[str]) -> List[str]:
        return [part.strip() for part in value.split(",") if part.strip()] if value else []
