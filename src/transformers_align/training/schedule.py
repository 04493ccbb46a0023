"""Which objectives a training micro-step computes, and so which stream its batch comes from: a pure function of
the schedule and the global micro-step.

Every rank computes the same global micro-step, so all ranks run the same objective in the same step
(no rank does task while another does alignment), and a resumed run continues the same sequence.
"""

from dataclasses import dataclass

from transformers_align.data.records import PAIRS
from transformers_align.data.records import TASK as TASK_STREAM

TASK = "task"
ALIGNMENT = "alignment"
MODES = ("alternate", "joint", "task", "alignment")
STREAM_OF = {TASK: TASK_STREAM, ALIGNMENT: PAIRS}  # the task loss reads task examples, the alignment loss pairs


@dataclass(frozen=True)
class Schedule:
    """``alternate``: one task micro-step, then ``alignment_steps_per_task_step`` alignment micro-steps (mid-align:
    1), and again; ``joint``: both losses in every micro-step; ``task`` / ``alignment``: one loss only."""

    mode: str
    alignment_steps_per_task_step: int = 1

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown training mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.alignment_steps_per_task_step < 1:
            raise ValueError(
                f"alignment_steps_per_task_step is {self.alignment_steps_per_task_step}; it must be at least 1"
            )
        if self.alignment_steps_per_task_step != 1 and self.mode != "alternate":
            raise ValueError(
                f"alignment_steps_per_task_step {self.alignment_steps_per_task_step} applies to the alternate "
                f"mode only, but the mode is {self.mode!r}"
            )

    @property
    def period(self) -> int:
        """Micro-steps after which the pattern of objectives repeats."""
        return self.alignment_steps_per_task_step + 1 if self.mode == "alternate" else 1

    def objectives(self, micro_step: int) -> frozenset:
        if self.mode == "alternate":
            return frozenset({TASK if micro_step % self.period == 0 else ALIGNMENT})
        if self.mode == "joint":
            return frozenset({TASK, ALIGNMENT})
        return frozenset({self.mode})

    def streams(self, micro_step: int) -> frozenset:
        """The streams (task, pairs) that global micro-step ``micro_step`` draws a batch from."""
        return frozenset(STREAM_OF[objective] for objective in self.objectives(micro_step))

    def streams_used(self) -> frozenset:
        return frozenset().union(*(self.streams(m) for m in range(self.period)))

    def batches_before(self, micro_step: int, stream: str) -> int:
        """How many batches of ``stream`` the micro-steps before ``micro_step`` drew (the index of its next batch)."""
        if self.mode == "alternate":
            task_batches = -(-micro_step // self.period)  # the task steps 0, period, 2 period, ... below micro_step
            return task_batches if stream == TASK_STREAM else micro_step - task_batches
        return micro_step if stream in self.streams_used() else 0


def mode_from_reference_flags(
    alternate_training: bool, only_train_language_modeling: bool, only_train_contrastive: bool
) -> str:
    """The mode that mid-align's flags ask for (baseline: --only_train_language_modeling)."""
    chosen = [flag for flag in (alternate_training, only_train_language_modeling, only_train_contrastive) if flag]
    if len(chosen) > 1:
        raise ValueError(
            "--alternate_training, --only_train_language_modeling and --only_train_contrastive exclude each other"
        )
    if alternate_training:
        return "alternate"
    if only_train_language_modeling:
        return TASK
    if only_train_contrastive:
        return ALIGNMENT
    return "joint"


def fields_for(objectives: frozenset, hard_negatives: bool = False) -> tuple:
    """Batch fields the model needs for ``objectives`` (with hard negatives: their ids and mask too)."""
    fields = ()
    if TASK in objectives:
        fields += ("input_ids", "attention_mask", "labels")
    if ALIGNMENT in objectives:
        fields += (
            "input_ids_parallel_0",
            "attention_mask_parallel_0",
            "input_ids_parallel_1",
            "attention_mask_parallel_1",
        )
        if hard_negatives:
            fields += ("input_ids_negative", "attention_mask_negative")
    return fields
