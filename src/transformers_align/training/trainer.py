"""``AlignmentTrainer``: a stock ``transformers.Trainer`` whose micro-steps compute the task loss, the alignment loss, or both.

Only ``compute_loss``, ``prediction_step``, ``evaluation_loop`` and ``log`` are overridden for the
objectives; checkpoints are the stock 4.43.4 ones, made visible only once complete and read back without
running code from them (``training.checkpoints``). The training loop, DeepSpeed and DDP are stock.
"""
import torch
from transformers import Trainer

from transformers_align.training.checkpoints import reading_rng_state, staged_checkpoint
from transformers_align.training.launch import check_world_size
from transformers_align.training.schedule import ALIGNMENT, TASK, fields_for, objectives_for_step

_LOSS_NAMES = ("task_loss", "alignment_loss")


class _LossMeans:
    """Sums and counts of each loss over the micro-batches that computed it, reduced across ranks on read."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.totals = torch.zeros(2 * len(_LOSS_NAMES), dtype=torch.float64)

    def add(self, outputs):
        for index, name in enumerate(_LOSS_NAMES):
            value = getattr(outputs, name, None)
            if value is not None:
                self.totals[2 * index] += float(value.detach())
                self.totals[2 * index + 1] += 1

    def read(self, accelerator, prefix=""):
        """True means per loss over all ranks (collective: every rank must call it), then reset."""
        totals = self.totals
        if accelerator is not None and accelerator.num_processes > 1:
            totals = accelerator.reduce(totals.to(accelerator.device), reduction="sum").cpu()
        self.reset()
        return {f"{prefix}{name}": round(float(totals[2 * i] / totals[2 * i + 1]), 6)
                for i, name in enumerate(_LOSS_NAMES) if totals[2 * i + 1] > 0}


class AlignmentTrainer(Trainer):
    """Trains with ``mode`` = alternate | joint | task | alignment (see ``training.schedule``).

    Logs ``task_loss`` and ``alignment_loss`` as true means over the micro-batches that computed them
    (mid-align's logger averaged zeros in, halving both). Evaluation reports ``eval_task_loss`` and
    ``eval_alignment_loss`` for whatever the evaluation data holds; ``eval_loss`` is the task loss when
    the mode trains the task (so best-model selection follows the task), else the alignment loss.
    """

    def __init__(self, *args, mode: str = "alternate", checkpoint_files: dict = None, **kwargs):
        objectives_for_step(mode, 0)  # validates the mode
        super().__init__(*args, **kwargs)
        check_world_size(self.args)  # under torchrun, each rank must not train alone
        self.mode = mode
        self.checkpoint_files = checkpoint_files or {}  # name -> text, written into every checkpoint
        self.checkpoint_stage = None
        self._train_means, self._eval_means = _LossMeans(), _LossMeans()
        self._micro_step_seen_at = None
        self._micro_in_step = 0

    def _global_micro_step(self) -> int:
        """global_step * gradient_accumulation_steps + index within the current optimizer step."""
        if self._micro_step_seen_at != self.state.global_step:
            self._micro_step_seen_at, self._micro_in_step = self.state.global_step, 0
        micro = self.state.global_step * self.args.gradient_accumulation_steps + self._micro_in_step
        self._micro_in_step += 1
        return micro

    def compute_loss(self, model, inputs, return_outputs=False, *args, **kwargs):
        objectives = objectives_for_step(self.mode, self._global_micro_step()) if model.training else self._eval_objectives(inputs)
        wanted = fields_for(objectives)
        missing = [name for name in wanted if name not in inputs]
        if missing:
            raise ValueError(f"mode {self.mode!r} needs batch fields {missing}: the training data has no "
                             f"{'parallel pairs' if 'input_ids_parallel_0' in missing else 'task examples'}")
        outputs = model(**{name: inputs[name] for name in wanted})
        (self._train_means if model.training else self._eval_means).add(outputs)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def _eval_objectives(self, inputs) -> frozenset:
        available = {TASK} if "input_ids" in inputs else set()
        if "input_ids_parallel_0" in inputs and self.mode != TASK:
            available.add(ALIGNMENT)
        return frozenset(available)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            _, outputs = self.compute_loss(model, inputs, return_outputs=True)
        selected = outputs.task_loss if self.mode != ALIGNMENT and outputs.task_loss is not None else outputs.alignment_loss
        return selected.detach(), None, None

    def evaluation_loop(self, *args, **kwargs):
        self._eval_means.reset()
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        output.metrics.update(self._eval_means.read(self.accelerator, prefix=f"{prefix}_"))
        return output

    def _load_rng_state(self, checkpoint):
        # 4.43.4 reads rng_state*.pth with torch.load's default, weights_only=True since torch 2.6, which
        # refuses NumPy's RNG state: allow exactly those types, never arbitrary objects.
        with reading_rng_state(checkpoint):
            super()._load_rng_state(checkpoint)

    def _save_checkpoint(self, model, trial, metrics=None):
        with staged_checkpoint(self, trial, self.checkpoint_files):
            super()._save_checkpoint(model, trial, metrics)

    def _get_output_dir(self, trial):
        return self.checkpoint_stage or super()._get_output_dir(trial)

    def create_optimizer(self):
        # With LoRA every trainable weight decays, so the Trainer's no-decay group is empty. DeepSpeed drops
        # empty groups, and the scheduler built for two groups then fails in torch's strict zip. Drop it here.
        optimizer = super().create_optimizer()
        if hasattr(optimizer, "param_groups"):  # not accelerate's DummyOptim, when DeepSpeed's config brings the optimizer
            optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]
        return optimizer

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:  # a training log: add the per-objective means since the last one
            logs.update(self._train_means.read(self.accelerator))
        super().log(logs, *args, **kwargs)
