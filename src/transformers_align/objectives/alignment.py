"""Representation alignment: InfoNCE between the pooled layer-L states of parallel sentences (mid-align), with
AFP's multilingual contrastive learning (MCL) as the same objective under AFP's settings (hard negatives with a
logit offset, negatives gathered across ranks, ``last`` or mean pooling). Its settings are
``modeling.settings.AlignmentSettings``, mid-align's names."""

from transformers_align.modeling.registry import resolved_settings
from transformers_align.modeling.settings import AlignmentSettings
from transformers_align.objectives.base import Objective


class AlignmentObjective(Objective):
    name = "alignment"
    stream = "pairs"
    fields = ("input_ids_parallel_0", "attention_mask_parallel_0", "input_ids_parallel_1", "attention_mask_parallel_1")
    optional_fields = ("input_ids_negative", "attention_mask_negative")
    settings = AlignmentSettings
    minimum_examples = 2  # an evaluation batch of one pair has no negative

    def loss(self, model, batch):
        return model.compute_alignment_loss(*(batch.get(name) for name in self.fields + self.optional_fields))

    def weight(self, model) -> float:
        return resolved_settings(model).contrastive_loss_weight
