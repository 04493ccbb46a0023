"""``AlignmentTrainer``: a stock ``transformers.Trainer`` whose micro-steps compute the objectives the schedule
picks (the task loss, the alignment loss, ...: ``objectives.registry``), one or several at a time.

The training data is one stream per kind of example (task examples, parallel pairs; ``data.streams``) and the
train dataloader yields, per global micro-step, the batch the schedule picks (``training.batches``);
``compute_loss`` computes the scheduled objectives that batch holds. The training loop, DeepSpeed and DDP are
the stock 4.43.4 ones: the dataloader is not handed to ``accelerator.prepare``, because it already gives each
rank its own share (``_prepare_inputs`` moves the batch to the device). Checkpoints are the stock ones, made
visible only once complete and read back without running code from them (``training.checkpoints``).
"""

import torch
from torch.utils.data import ConcatDataset
from transformers import Trainer

from transformers_align.data.streams import TrainingStreams
from transformers_align.objectives.registry import OBJECTIVES
from transformers_align.training.arguments import AlignmentTrainingArguments
from transformers_align.training.batches import ScheduledBatches, ScheduledDataLoader, StreamedBatches
from transformers_align.training.checkpoints import reading_rng_state, staged_checkpoint
from transformers_align.training.launch import check_world_size
from transformers_align.training.safety import TrainingSafety
from transformers_align.training.schedule import fields_for

_LOSS_NAMES = tuple(objective.log_name for objective in OBJECTIVES.values())


class _LossMeans:
    """Sums and counts of each loss over the micro-batches that computed it, reduced across ranks on read."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.totals = torch.zeros(2 * len(_LOSS_NAMES), dtype=torch.float64)

    def add(self, outputs):
        losses = outputs.objective_losses or {}
        for index, name in enumerate(OBJECTIVES):
            value = losses.get(name)
            if value is not None:
                self.totals[2 * index] += float(value.detach())
                self.totals[2 * index + 1] += 1

    def read(self, accelerator, prefix=""):
        """True means per loss over all ranks (collective: every rank must call it), then reset."""
        totals = self.totals
        if accelerator is not None and accelerator.num_processes > 1:
            totals = accelerator.reduce(totals.to(accelerator.device), reduction="sum").cpu()
        self.reset()
        return {
            f"{prefix}{name}": round(float(totals[2 * i] / totals[2 * i + 1]), 6)
            for i, name in enumerate(_LOSS_NAMES)
            if totals[2 * i + 1] > 0
        }


class AlignmentTrainer(Trainer):
    """Trains with the schedule of ``args`` (an :class:`AlignmentTrainingArguments`): alternate | joint | one
    objective (see ``training.schedule``).

    ``train_dataset`` is a :class:`TrainingStreams`, or features in memory (``data.features.tokenize_rows``
    output), which are split into the two streams. ``--group_by_length`` groups each stream's batches by
    length. Logs each objective's loss as a true mean under ``<name>_loss`` (``task_loss``,
    ``alignment_loss``, ...): the task loss over every scored token of the logging window's optimizer steps
    (all ranks, all accumulated micro-batches), the alignment loss over its micro-batches (mid-align's logger
    averaged zeros in, halving both), and ``task_epoch`` / ``pairs_epoch``, the passes made over each stream.
    Evaluation reports ``eval_<name>_loss`` (means over evaluation batches) for each objective the evaluation
    data holds; ``eval_loss`` is the loss of the schedule's first objective the batch holds (the task when the
    mode trains it, so best-model selection follows the task), else the next one's.
    """

    def __init__(
        self,
        model=None,
        args: AlignmentTrainingArguments = None,
        train_dataset=None,
        eval_dataset=None,
        checkpoint_files: dict = None,
        **kwargs,
    ):
        if not isinstance(args, AlignmentTrainingArguments):
            raise TypeError(
                f"AlignmentTrainer needs args=AlignmentTrainingArguments(...) (it holds the training mode), "
                f"not {type(args).__name__}"
            )
        self.schedule = args.schedule()
        self.mode = self.schedule.mode
        if train_dataset is not None and not isinstance(train_dataset, TrainingStreams):
            train_dataset = TrainingStreams.from_features(train_dataset)
        if isinstance(eval_dataset, TrainingStreams):
            eval_dataset = ConcatDataset([stream.examples for stream in eval_dataset.streams.values()])
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, **kwargs)
        check_world_size(self.args)  # under torchrun, each rank must not train alone
        self.checkpoint_files = checkpoint_files or {}  # name -> text, written into every checkpoint
        self.checkpoint_stage = None
        self._train_means, self._eval_means = _LossMeans(), _LossMeans()
        self._scheduled = None
        self.safety = TrainingSafety(self.model.config, args.stall_warning_steps)  # stops a diverged run

    def get_train_dataloader(self):
        if self.train_dataset is None:
            raise ValueError("AlignmentTrainer: training requires a train_dataset.")
        args = self.args
        common = dict(
            streams=self.train_dataset,
            collator=self.data_collator,
            schedule=self.schedule,
            per_device_batch=self._train_batch_size,
            world_size=args.world_size,
            rank=args.process_index,
            accumulation=args.gradient_accumulation_steps,
            seed=args.data_seed if args.data_seed is not None else args.seed,
            per_device_pairs_batch=args.alignment_batch_size * max(1, args.n_gpu),  # as _train_batch_size
        )
        if self.train_dataset.streaming:  # read in order in this process: worker processes would each read it all
            self._scheduled = StreamedBatches(**common)
            return torch.utils.data.DataLoader(self._scheduled, batch_size=None)
        self._scheduled = ScheduledBatches(**common, group_by_length=args.group_by_length)
        workers = args.dataloader_num_workers
        return ScheduledDataLoader(
            self._scheduled,
            num_workers=workers,
            pin_memory=args.dataloader_pin_memory and torch.cuda.is_available(),
            persistent_workers=args.dataloader_persistent_workers and workers > 0,
            prefetch_factor=args.dataloader_prefetch_factor if workers else None,
        )

    def num_examples(self, dataloader) -> int:
        if isinstance(dataloader.dataset, ScheduledBatches):
            return dataloader.dataset.examples_per_epoch
        return super().num_examples(dataloader)

    def floating_point_ops(self, inputs) -> int:
        """6 × parameters × tokens of every stream in the batch (the stock estimate counts ``input_ids`` only)."""
        tokens = sum(value.numel() for name, value in inputs.items() if name.startswith("input_ids"))
        return 6 * tokens * self.model.num_parameters(exclude_embeddings=True)

    def compute_loss(self, model, inputs, return_outputs=False, *args, **kwargs):
        objectives = self._batch_objectives(inputs, evaluating=not model.training)
        if not objectives:
            raise ValueError(f"mode {self.mode!r}: the batch holds the fields of none of its objectives")
        wanted = fields_for(objectives, inputs)
        extra = {
            OBJECTIVES[name].items_field: inputs[OBJECTIVES[name].items_field]
            for name in objectives
            if OBJECTIVES[name].items_field in inputs
        }
        outputs = model(**{name: inputs[name] for name in wanted}, **extra)
        (self._train_means if model.training else self._eval_means).add(outputs)
        if model.training:
            self.safety.record(outputs, inputs, self.args.world_size)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def _batch_objectives(self, inputs, evaluating: bool) -> frozenset:
        """The schedule's objectives whose fields this batch holds (evaluation: with enough examples, e.g. an
        alignment loss needs 2 pairs)."""
        return frozenset(
            name
            for name in self.schedule.composed
            if OBJECTIVES[name].present(inputs)
            and (not evaluating or OBJECTIVES[name].examples(inputs) >= OBJECTIVES[name].minimum_examples)
        )

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        if not self._batch_objectives(inputs, evaluating=True):  # e.g. a last batch holding a single pair
            return None, None, None
        with torch.no_grad(), self.compute_loss_context_manager():
            _, outputs = self.compute_loss(model, inputs, return_outputs=True)
        losses = outputs.objective_losses
        selected = next(losses[name] for name in self.schedule.composed if name in losses)
        return selected.detach(), None, None

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        self._eval_means.reset()
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        output.metrics.update(self._eval_means.read(self.accelerator, prefix=f"{metric_key_prefix}_"))
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
        if hasattr(
            optimizer, "param_groups"
        ):  # not accelerate's DummyOptim, when DeepSpeed's config brings the optimizer
            optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]
        return optimizer

    def _maybe_log_save_evaluate(self, tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval, *args):
        self.safety.check(self, grad_norm)  # before the step is logged or saved: raises TrainingDiverged
        super()._maybe_log_save_evaluate(tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval, *args)

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:  # a training log: add the per-objective means since the last one, and each stream's epochs
            logs.update(self._train_means.read(self.accelerator))
            if self._scheduled is not None:
                logs.update(self._scheduled.epochs(self.state.global_step * self.args.gradient_accumulation_steps))
        super().log(logs, *args, **kwargs)
