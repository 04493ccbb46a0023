"""Which objectives a training micro-step computes, and so which streams its batch comes from: a pure function
of the schedule and the global micro-step.

A schedule composes objectives (``objectives.registry``) by name: ``alternate`` gives each objective its own
micro-steps in turn (``steps_per_objective`` of each), ``joint`` computes all of them in every micro-step
(weighted by their settings), a single objective's name trains that one alone. Every rank computes the same
global micro-step, so all ranks run the same objectives in the same step (no rank does task while another
does alignment), and a resumed run continues the same sequence.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from transformers_align.objectives.registry import ALIGNMENT, OBJECTIVES, TASK

COMPOSITIONS = ("alternate", "joint")
MODES = COMPOSITIONS + tuple(OBJECTIVES)
DEFAULT_OBJECTIVES = (TASK, ALIGNMENT)  # what alternate and joint compose unless told otherwise (mid-align, AFP)
STREAM_OF = {name: candidate.stream for name, candidate in OBJECTIVES.items()}  # the stream each objective reads


@dataclass(frozen=True)
class Schedule:
    """``alternate``: one task micro-step, then ``alignment_steps_per_task_step`` alignment micro-steps (mid-align:
    1), and again, or, for any ``objective_names``, ``steps_per_objective`` micro-steps of each in turn; ``joint``: all
    of ``objective_names`` in every micro-step; an objective's name (``task``, ``alignment``, ...): that loss only."""

    mode: str
    alignment_steps_per_task_step: int = 1
    objective_names: Optional[Tuple[str, ...]] = None  # composed by alternate / joint; default DEFAULT_OBJECTIVES
    steps_per_objective: Optional[Tuple[int, ...]] = None  # alternate; default 1 each (alignment's: the flag)

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
        names = self.objective_names
        if names is not None:
            if self.mode not in COMPOSITIONS:
                raise ValueError(f"objectives apply to the alternate and joint modes, but the mode is {self.mode!r}")
            unknown = [name for name in names if name not in OBJECTIVES]
            if unknown:
                raise ValueError(
                    f"objectives {','.join(names)}: unknown objective {unknown[0]!r}; known: {', '.join(OBJECTIVES)}"
                )
            if len(set(names)) != len(names) or not names:
                raise ValueError(f"objectives {','.join(names)}: name each objective once")
        steps = self.steps_per_objective
        if steps is not None:
            if self.mode != "alternate":
                raise ValueError(f"steps_per_objective applies to the alternate mode only, not {self.mode!r}")
            if len(steps) != len(self.composed) or any(s < 1 for s in steps):
                raise ValueError(
                    f"steps_per_objective {','.join(map(str, steps))}: one count >= 1 for each of the objectives "
                    f"{','.join(self.composed)}"
                )

    @property
    def composed(self) -> Tuple[str, ...]:
        """The objectives this schedule trains, in order."""
        if self.mode not in COMPOSITIONS:
            return (self.mode,)
        return self.objective_names or DEFAULT_OBJECTIVES

    @property
    def steps(self) -> Tuple[int, ...]:
        """alternate: the micro-steps each composed objective takes in turn."""
        if self.steps_per_objective is not None:
            return self.steps_per_objective
        return tuple(self.alignment_steps_per_task_step if name == ALIGNMENT else 1 for name in self.composed)

    @property
    def period(self) -> int:
        """Micro-steps after which the pattern of objectives repeats."""
        return sum(self.steps) if self.mode == "alternate" else 1

    def objectives(self, micro_step: int) -> frozenset:
        """The objectives global micro-step ``micro_step`` computes."""
        if self.mode != "alternate":
            return frozenset(self.composed)
        position = micro_step % self.period
        for name, count in zip(self.composed, self.steps):
            if position < count:
                return frozenset({name})
            position -= count
        raise AssertionError("unreachable: the position lies within the period")

    def streams(self, micro_step: int) -> frozenset:
        """The streams (task, pairs, ...) that global micro-step ``micro_step`` draws a batch from."""
        return frozenset(OBJECTIVES[name].stream for name in self.objectives(micro_step))

    def streams_used(self) -> frozenset:
        return frozenset().union(*(self.streams(m) for m in range(self.period)))

    @property
    def primary_stream(self) -> str:
        """The stream of the first objective: a Trainer epoch is one pass over it, with the steps between."""
        return OBJECTIVES[self.composed[0]].stream

    def batches_before(self, micro_step: int, stream: str) -> int:
        """How many batches of ``stream`` the micro-steps before ``micro_step`` drew (the index of its next batch)."""
        periods, position = divmod(micro_step, self.period)
        per_period = sum(stream in self.streams(m) for m in range(self.period))
        return periods * per_period + sum(stream in self.streams(m) for m in range(position))


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


def fields_for(objectives: frozenset, batch) -> tuple:
    """Batch fields the model needs for ``objectives``: each one's fields, and its optional ones the batch has."""
    fields = ()
    for name, candidate in OBJECTIVES.items():
        if name in objectives:
            fields += candidate.fields + tuple(f for f in candidate.optional_fields if f in batch)
    return fields
