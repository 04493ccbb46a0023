"""A diverged run stops; a stalled one is named.

``compute_loss`` records each training micro-batch's losses (:meth:`TrainingSafety.record`); after every
optimizer step, before the Trainer logs, evaluates or saves, :meth:`TrainingSafety.check` combines the
ranks' records in one all-reduce and

- raises :class:`TrainingDiverged` on every rank at the first step whose loss (any objective, any rank) or
  gradient norm is not finite. The weights are already updated with it, so nothing is saved from here on:
  the checkpoints written before stay, and no rotation removes them;
- warns once when the gradient norm is 0 and every loss sits at chance (the task loss at ln V, the
  alignment loss at ln of its candidates, the consistency loss at 0: outputs that ignore the input are the
  same for both languages) for ``stall_warning_steps`` steps in a row: nothing is learning.
"""

import logging
import math

import torch
from transformers.trainer_utils import get_last_checkpoint

from transformers_align.objectives.registry import OBJECTIVES as REGISTERED

logger = logging.getLogger(__name__)

OBJECTIVES = tuple(objective.log_name for objective in REGISTERED.values())  # the logged names of the losses
CHANCE_TOLERANCE = 1e-3  # nats: a stalled run sits at chance to float precision (mid-align's stall: 1e-6)
ZERO_GRADIENT = 1e-8
_PRESENT, _NON_FINITE, _OFF_CHANCE, _COLUMNS = 0, 1, 2, 3


class TrainingDiverged(RuntimeError):
    """A loss or the gradient norm of an optimizer step is not finite; raised on every rank at the same step."""

    def __init__(self, step: int, what: str, args):
        self.step, self.what = step, what
        last = get_last_checkpoint(args.output_dir) if args.output_dir else None
        kept = f"the last checkpoint is {last}" if last else "no checkpoint was written before it"
        super().__init__(
            f"training diverged at step {step}: {what} is not finite (nan or inf). Nothing from this step on is "
            f"saved; {kept}. Try a lower --learning_rate (now {args.learning_rate:g}) or --max_grad_norm "
            f"(now {args.max_grad_norm:g}), more --warmup_steps, or bf16 instead of fp16"
        )


def alignment_chance(pairs: int, config, hard_negatives: bool, world_size: int) -> float:
    """InfoNCE when every similarity is equal: ln of each anchor's candidates (gathered ones included)."""
    if getattr(config, "gather_negatives_across_ranks", False):
        pairs *= world_size
    forward = math.log(pairs * (2 if hard_negatives else 1))  # hard negatives are candidates of side 0 only
    if getattr(config, "contrastive_direction", "one_way") == "symmetric":
        return 0.5 * (forward + math.log(pairs))
    return forward


class TrainingSafety:
    """Per-rank records of the micro-batches since the last optimizer step, checked at the step."""

    def __init__(self, config, stall_warning_steps: int):
        self.config = config
        self.task_chance = math.log(config.vocab_size)  # uniform next-token logits
        self.stall_warning_steps = stall_warning_steps
        self.records = torch.zeros(len(OBJECTIVES), _COLUMNS, dtype=torch.float64)
        self.checked_step = None
        self.stall_start, self.stalled_objectives = None, set()
        self.stall_warned = False

    def record(self, outputs, inputs, world_size: int) -> None:
        chances = {
            "task_loss": self.task_chance,
            "alignment_loss": alignment_chance(
                len(inputs["input_ids_parallel_0"]), self.config, "input_ids_negative" in inputs, world_size
            )
            if "input_ids_parallel_0" in inputs
            else None,
            "consistency_loss": 0.0,
        }
        losses = getattr(outputs, "objective_losses", None) or {}
        for row, (name, objective) in enumerate(zip(OBJECTIVES, REGISTERED)):
            value = getattr(outputs, name, None)  # task_loss, alignment_loss: attributes of the output
            value = losses.get(objective) if value is None else value
            if value is None:
                continue
            value = float(value.detach())
            self.records[row, _PRESENT] += 1
            self.records[row, _NON_FINITE] += not math.isfinite(value)
            self.records[row, _OFF_CHANCE] += not abs(value - chances[name]) <= CHANCE_TOLERANCE

    def check(self, trainer, grad_norm) -> None:
        """After the optimizer step ``trainer.state.global_step``; collective: every rank must call it."""
        step = trainer.state.global_step
        if step == self.checked_step:  # the Trainer calls its hook again at the end of an epoch
            return
        self.checked_step = step
        records, self.records = self.records, torch.zeros_like(self.records)
        accelerator = trainer.accelerator
        # Without a gradient norm (--max_grad_norm 0) the weights themselves are checked before a save.
        unchecked = grad_norm is None and trainer.control.should_save
        weights = _non_finite_weights(trainer.model) if unchecked else torch.zeros(1, dtype=torch.float64)
        records = torch.cat([records.flatten(), weights])
        if accelerator.num_processes > 1:  # one tiny all-reduce per optimizer step: a loss can fail on one rank
            records = accelerator.reduce(records.to(accelerator.device), reduction="sum").cpu()
        per_objective, bad_weights = records[:-1].view(len(OBJECTIVES), _COLUMNS), records[-1]
        for row, name in enumerate(OBJECTIVES):
            if per_objective[row, _NON_FINITE] > 0:
                raise TrainingDiverged(step, name, trainer.args)
        norm = None if grad_norm is None else float(grad_norm)
        # A mixed-precision loss scaler skips a step whose gradients overflow (and lowers its scale): no harm done.
        if norm is not None and not math.isfinite(norm) and not accelerator.optimizer_step_was_skipped:
            raise TrainingDiverged(step, "the gradient norm", trainer.args)
        if bad_weights > 0:
            raise TrainingDiverged(step, "a trainable weight", trainer.args)
        self._track_stall(step, norm, per_objective, trainer)

    def _track_stall(self, step, norm, per_objective, trainer) -> None:
        present = per_objective[:, _PRESENT] > 0
        stalled = (
            norm is not None
            and norm <= ZERO_GRADIENT
            and bool(present.any())
            and not per_objective[present, _OFF_CHANCE].any()
        )
        if not stalled:
            self.stall_start, self.stalled_objectives = None, set()
            return
        self.stall_start = self.stall_start or step
        self.stalled_objectives |= {name for row, name in enumerate(OBJECTIVES) if present[row]}
        if self.stall_warned or self.stall_warning_steps <= 0:
            return
        window = self.stall_warning_steps
        if trainer.state.max_steps > 0:  # a short run is warned within its first half
            window = min(window, max(2, trainer.state.max_steps // 2))
        if step - self.stall_start + 1 >= window:
            self.stall_warned = True
            if trainer.is_world_process_zero():
                logger.warning(self.stall_message(self.stall_start, step))

    def stall_message(self, first: int, last: int) -> str:
        losses = [name for name in OBJECTIVES if name in self.stalled_objectives]
        return (
            f"training stalled at steps {first}-{last}: the gradient norm is 0 and {' and '.join(losses)} "
            f"sit exactly at chance (task: ln(vocabulary size) = {self.task_chance:.4f}; alignment: ln(pairs "
            "in the contrastive batch); consistency: 0). The model's outputs no longer depend on its inputs "
            "(saturated or collapsed activations, typically after too high a learning rate), so the remaining steps "
            "learn nothing: stop the run and restart from a checkpoint before the stall with a lower --learning_rate"
        )


def _non_finite_weights(model) -> torch.Tensor:
    """1 when a trainable weight is not finite, else 0."""
    flags = [~torch.isfinite(p.detach()).all() for p in model.parameters() if p.requires_grad and p.numel()]
    return torch.tensor([float(torch.stack(flags).any()) if flags else 0.0], dtype=torch.float64)
