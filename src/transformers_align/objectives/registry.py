"""The objectives the library knows, by name, in the order a joint loss sums them (the task first)."""

from transformers_align.modeling.settings import AlignmentSettings
from transformers_align.objectives.alignment import AlignmentObjective
from transformers_align.objectives.consistency import ConsistencyObjective
from transformers_align.objectives.task import TaskObjective

OBJECTIVES = {
    objective.name: objective for objective in (TaskObjective(), AlignmentObjective(), ConsistencyObjective())
}
TASK, ALIGNMENT = "task", "alignment"


def settings_classes() -> tuple:
    """Each settings dataclass once, in objective order."""
    return tuple(dict.fromkeys(o.settings for o in OBJECTIVES.values() if o.settings is not None))


def write_settings(config, overrides: dict) -> dict:
    """Write every objective's settings but the alignment ones into ``config`` (``overrides`` on top of what it
    holds, validated); returns the remaining overrides, for ``AlignmentSettings`` (which checks the depth)."""
    remaining = dict(overrides)
    for settings in settings_classes():
        if settings is not AlignmentSettings:
            own = {name: remaining.pop(name) for name in settings.names() if name in remaining}
            settings.from_config(config, **own).validated().write_to(config)
    return remaining
