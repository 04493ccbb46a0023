"""Which objectives a training micro-step computes, and so which stream its batch comes from: pure functions of
the mode and the global micro-step.

Every rank computes the same global micro-step, so all ranks run the same objective in the same step
(no rank does task while another does alignment), and a resumed run continues the same sequence.
"""
from transformers_align.data.records import PAIRS
from transformers_align.data.records import TASK as TASK_STREAM

TASK = "task"
ALIGNMENT = "alignment"
MODES = ("alternate", "joint", "task", "alignment")
STREAM_OF = {TASK: TASK_STREAM, ALIGNMENT: PAIRS}  # the task loss reads task examples, the alignment loss pairs


def objectives_for_step(mode: str, micro_step: int) -> frozenset:
    """``alternate``: task on even micro-steps, alignment on odd ones; ``joint``: both; else one."""
    if mode == "alternate":
        return frozenset({TASK if micro_step % 2 == 0 else ALIGNMENT})
    if mode == "joint":
        return frozenset({TASK, ALIGNMENT})
    if mode in (TASK, ALIGNMENT):
        return frozenset({mode})
    raise ValueError(f"unknown training mode {mode!r}; choose one of {', '.join(MODES)}")


def streams_for_step(mode: str, micro_step: int) -> frozenset:
    """The streams (task, pairs) that global micro-step ``micro_step`` draws a batch from."""
    return frozenset(STREAM_OF[objective] for objective in objectives_for_step(mode, micro_step))


def stream_batches_before(mode: str, micro_step: int, stream: str) -> int:
    """How many batches of ``stream`` the micro-steps before ``micro_step`` drew (the index of its next batch)."""
    if mode == "alternate":
        return (micro_step + 1) // 2 if stream == TASK_STREAM else micro_step // 2
    return micro_step if stream in streams_for_step(mode, 0) else 0


def mode_from_reference_flags(alternate_training: bool, only_train_language_modeling: bool, only_train_contrastive: bool) -> str:
    """The mode that mid-align's flags ask for (baseline: --only_train_language_modeling)."""
    chosen = [flag for flag in (alternate_training, only_train_language_modeling, only_train_contrastive) if flag]
    if len(chosen) > 1:
        raise ValueError("--alternate_training, --only_train_language_modeling and --only_train_contrastive exclude each other")
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
        fields += ("input_ids_parallel_0", "attention_mask_parallel_0", "input_ids_parallel_1", "attention_mask_parallel_1")
        if hard_negatives:
            fields += ("input_ids_negative", "attention_mask_negative")
    return fields
