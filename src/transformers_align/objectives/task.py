"""The task loss: the causal-LM cross-entropy of the labelled (answer) tokens, computed by the aligned forward
itself (``AlignedCausalLMMixin``), which also returns the logits when asked."""

from transformers_align.modeling.registry import resolved_settings
from transformers_align.objectives.base import Objective


class TaskObjective(Objective):
    name = "task"
    stream = "task"
    fields = ("input_ids", "attention_mask", "labels")
    items_field = "num_items_in_batch"  # the scored tokens of the optimizer step per task micro-batch

    def loss(self, model, batch):
        return model.task_output(batch).loss

    def weight(self, model) -> float:
        return resolved_settings(model).task_loss_weight
