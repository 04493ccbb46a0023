"""The aligned causal-LM forward: the loss of each objective whose batch fields it is given (the task loss,
the layer-L alignment loss by early exit, ...: ``objectives.registry``), weighted and summed in one call."""

from dataclasses import dataclass
from typing import Dict, Optional

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.utils import logging

from transformers_align.losses import info_nce, pooled_cosines
from transformers_align.modeling.causal_lm_loss import causal_lm_loss
from transformers_align.modeling.registry import decoder_backbone, resolved_settings
from transformers_align.modeling.representation import aligned_representation
from transformers_align.modeling.settings import AlignmentSettings
from transformers_align.objectives.registry import OBJECTIVES, TASK, write_settings

logger = logging.get_logger(__name__)  # transformers' style: the fork view inlines this module into its files


@dataclass
class AlignmentCausalLMOutput(CausalLMOutputWithPast):
    """A causal-LM output that also says which losses were computed (None for those that were not).

    ``objective_losses`` maps each computed objective's name to its unweighted loss; ``task_loss`` and
    ``alignment_loss`` (the unweighted InfoNCE) are two of them. ``loss`` is the task loss alone, or the sum
    over the computed objectives of weight x loss (``task_loss_weight * task_loss + contrastive_loss_weight *
    alignment_loss`` in the joint mode).
    """

    task_loss: Optional[torch.FloatTensor] = None
    alignment_loss: Optional[torch.FloatTensor] = None
    objective_losses: Optional[Dict[str, torch.FloatTensor]] = None


class AlignedCausalLMMixin:
    """Put first in the bases of a stock ``*ForCausalLM``: ``class AlignX(AlignedCausalLMMixin, XForCausalLM)``.

    Without pair fields and labels ``forward`` is the stock forward (same logits and ``generate``). With
    labels, the task loss is the stock loss, computed as ``causal_lm_loss`` does (LM head on labelled
    positions only, in chunks); whether the logits are also computed and returned then follows
    ``return_logits``: by default not in training (``model.train()``), so no ``batch x time x
    vocabulary`` tensor exists, and yes in eval mode, as stock. ``num_items_in_batch`` (int or 0-d
    tensor), when given, divides the summed token losses of the micro-batch instead of its own count
    of labelled tokens (gradient accumulation over micro-batches of unequal label counts).
    """

    def __init__(self, config, **alignment_settings):
        super().__init__(config)
        alignment_settings = write_settings(config, alignment_settings)  # the other objectives' settings
        AlignmentSettings.from_config(config, **alignment_settings).write_to(config)
        config.additional_loss_layer = resolved_settings(self).additional_loss_layer

    def compute_alignment_loss(
        self,
        input_ids_parallel_0,
        attention_mask_parallel_0,
        input_ids_parallel_1,
        attention_mask_parallel_1,
        input_ids_negative=None,
        attention_mask_negative=None,
    ):
        """Unweighted InfoNCE between the pooled layer-L states of the two sides (and hard negatives)."""
        settings = resolved_settings(self)
        streams = [(input_ids_parallel_0, attention_mask_parallel_0), (input_ids_parallel_1, attention_mask_parallel_1)]
        if input_ids_negative is not None:
            streams.append((input_ids_negative, attention_mask_negative))
        # One pass per side, each at its own padded length: the sides' lengths differ (French takes about twice
        # the tokens of English with SmolLM2's tokenizer), and padding one to the other's length is wasted compute.
        sides = [
            aligned_representation(self, ids, torch.ones_like(ids) if mask is None else mask, settings)
            for ids, mask in streams
        ]
        self._warn_once_if_degenerate(sides[0], sides[1], settings)
        return info_nce(
            sides[0],
            sides[1],
            temperature=settings.contrastive_loss_temperature,
            similarity=settings.distance_function,
            direction=settings.contrastive_direction,
            stop_gradient_side1=settings.unidirectional_contrastive_loss,
            hard_negatives=sides[2] if len(sides) > 2 else None,
            hard_negative_weight=settings.hard_negative_weight,
            gather_across_ranks=settings.gather_negatives_across_ranks,
        )

    def _warn_once_if_degenerate(self, side0, side1, settings):
        if getattr(self, "_degeneracy_checked", False) or side0.shape[0] < 2:
            return
        self._degeneracy_checked = True
        warning = settings.degeneracy_warning(*pooled_cosines(side0.detach(), side1.detach()))
        if warning:
            logger.warning(warning)

    def _task_forward(self, input_ids, attention_mask, labels, return_logits, num_items_in_batch, kwargs):
        """The stock forward without labels, or the backbone alone and the loss from its last hidden state."""
        if labels is None or (not self.training if return_logits is None else return_logits):
            task = super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)
            if labels is not None:
                task.loss = causal_lm_loss(task.logits, labels, self.config, num_items_in_batch=num_items_in_batch)
            return task
        # The stock forward's own backbone call (same keywords), then the head on labelled positions only.
        task = decoder_backbone(self)(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)
        loss = causal_lm_loss(
            task.last_hidden_state,
            labels,
            self.config,
            head=self.get_output_embeddings(),
            num_items_in_batch=num_items_in_batch,
        )
        return CausalLMOutputWithPast(
            loss=loss,
            past_key_values=task.past_key_values,
            hidden_states=task.hidden_states,
            attentions=task.attentions,
        )

    def task_output(self, batch):
        """The task forward of ``batch`` (the fields of :meth:`forward`): the stock output, with the task loss."""
        return self._task_forward(
            batch.get("input_ids"),
            batch.get("attention_mask"),
            batch.get("labels"),
            batch.get("return_logits"),
            batch.get("num_items_in_batch"),
            batch.get("backbone_kwargs", {}),
        )

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        labels=None,
        input_ids_parallel_0=None,
        attention_mask_parallel_0=None,
        input_ids_parallel_1=None,
        attention_mask_parallel_1=None,
        input_ids_negative=None,
        attention_mask_negative=None,
        return_logits=None,
        num_items_in_batch=None,
        **kwargs,
    ):
        return_dict = kwargs.pop("return_dict", None)
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if (input_ids_parallel_0 is None) != (input_ids_parallel_1 is None):
            raise ValueError("alignment needs both sides of the pairs: input_ids_parallel_0 and input_ids_parallel_1")
        batch = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,
            input_ids_parallel_0=input_ids_parallel_0,
            attention_mask_parallel_0=attention_mask_parallel_0,
            input_ids_parallel_1=input_ids_parallel_1,
            attention_mask_parallel_1=attention_mask_parallel_1,
            input_ids_negative=input_ids_negative,
            attention_mask_negative=attention_mask_negative,
            return_logits=return_logits,
            num_items_in_batch=num_items_in_batch,
        )
        for objective in OBJECTIVES.values():  # the other objectives' fields arrive as keywords
            batch.update({name: kwargs.pop(name) for name in objective.all_fields() if name in kwargs})
        batch["backbone_kwargs"] = kwargs  # the stock forward's own keywords (position_ids, use_cache, ...)
        has_task = input_ids is not None or kwargs.get("inputs_embeds") is not None
        task = self.task_output(batch) if has_task else None
        losses = {TASK: task.loss} if task is not None and task.loss is not None else {}
        for objective in OBJECTIVES.values():
            if objective.name != TASK and objective.present(batch):
                losses[objective.name] = objective.loss(self, batch)
        if not has_task and not losses:
            raise ValueError(
                "nothing to compute: pass input_ids (task) and/or the fields of an objective "
                "(input_ids_parallel_0/1: alignment)"
            )
        output = AlignmentCausalLMOutput(
            loss=self._weighted_loss(losses),
            logits=task.logits if task is not None else None,
            past_key_values=task.past_key_values if task is not None else None,
            hidden_states=task.hidden_states if task is not None else None,
            attentions=task.attentions if task is not None else None,
            task_loss=losses.get(TASK),
            alignment_loss=losses.get("alignment"),
            objective_losses=losses or None,
        )
        return output if return_dict else output.to_tuple()

    def _weighted_loss(self, losses):
        """The task loss alone unweighted (the stock loss); else the sum of weight x loss, in objective order."""
        if set(losses) <= {TASK}:
            return losses.get(TASK)
        total = None
        for name, value in losses.items():
            term = OBJECTIVES[name].weight(self) * value
            total = term if total is None else total + term
        return total
