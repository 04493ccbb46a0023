"""Which objectives a training micro-step computes: a pure function of the mode and the global micro-step.

Every rank computes the same global micro-step, so all ranks run the same objective in the same step
(no rank does task while another does alignment), and a resumed run continues the same sequence.
"""
TASK = "task"
ALIGNMENT = "alignment"
MODES = ("alternate", "joint", "task", "alignment")


def objectives_for_step(mode: str, micro_step: int) -> frozenset:
    """``alternate``: task on even micro-steps, alignment on odd ones; ``joint``: both; else one."""
    if mode == "alternate":
        return frozenset({TASK if micro_step % 2 == 0 else ALIGNMENT})
    if mode == "joint":
        return frozenset({TASK, ALIGNMENT})
    if mode in (TASK, ALIGNMENT):
        return frozenset({mode})
    raise ValueError(f"unknown training mode {mode!r}; choose one of {', '.join(MODES)}")


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


def fields_for(objectives: frozenset) -> tuple:
    """Batch fields the model needs for ``objectives``."""
    fields = ()
    if TASK in objectives:
        fields += ("input_ids", "attention_mask", "labels")
    if ALIGNMENT in objectives:
        fields += ("input_ids_parallel_0", "attention_mask_parallel_0", "input_ids_parallel_1", "attention_mask_parallel_1")
    return fields
