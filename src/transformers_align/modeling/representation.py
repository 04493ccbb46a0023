"""The layer-L representation by early exit: run decoder blocks 1..L only, never the final norm or LM head.

The block list is truncated for the duration of one call and the final norm swapped for an identity, so
the backbone's own ``last_hidden_state`` is the output of block L (= stock ``hidden_states[L]``). No
forward code is copied, so a transformers upgrade touches only ``registry.py``; it works the same with
PEFT adapters, gradient checkpointing (reentrant or not) and autocast.
"""

from contextlib import contextmanager

import torch
from torch import nn

from transformers_align.losses import pool, pooling_mask
from transformers_align.modeling.registry import decoder_backbone, decoder_layout, num_blocks, unwrap_causal_lm
from transformers_align.modeling.settings import AlignmentSettings


@contextmanager
def truncated_to_layer(causal_lm, layer: int):
    """Within the block, ``causal_lm``'s backbone runs blocks 1..``layer`` and skips its final norm."""
    layout = decoder_layout(causal_lm.config)
    total = num_blocks(causal_lm)
    if not 1 <= layer <= total:
        raise ValueError(
            f"layer {layer} is out of range: this model has {total} decoder blocks, "
            f"so the layer must be between 1 and {total}"
        )
    backbone = decoder_backbone(causal_lm)
    blocks, final_norm = getattr(backbone, layout.blocks), getattr(backbone, layout.final_norm)
    setattr(backbone, layout.blocks, nn.ModuleList(blocks[:layer]))
    setattr(backbone, layout.final_norm, nn.Identity())
    try:
        yield backbone
    finally:
        setattr(backbone, layout.blocks, blocks)
        setattr(backbone, layout.final_norm, final_norm)


def positions_from_mask(attention_mask):
    """Position ids that count real tokens only, so left padding does not shift absolute positions."""
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 1)


def layer_hidden_states(model, input_ids, attention_mask, layer: int, all_layers: bool = False):
    """``(batch, time, dim)`` output of decoder block ``layer`` (1-indexed), computed by early exit.

    With ``all_layers``, the tuple of the outputs of blocks 1..``layer`` from the same single pass (the
    backbone's ``hidden_states`` without the embeddings; its last entry has no final norm either).
    """
    causal_lm = unwrap_causal_lm(model)
    extra = {}
    if decoder_layout(causal_lm.config).takes_position_ids:
        extra["position_ids"] = positions_from_mask(attention_mask)
    with truncated_to_layer(causal_lm, layer) as backbone:
        out = backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            use_cache=False,
            return_dict=True,
            output_hidden_states=all_layers,
            **extra,
        )
    return out.hidden_states[1:] if all_layers else out.last_hidden_state


def layer_representation(
    model, input_ids, attention_mask, layer: int, pooling_type: str = "mean", skip_special_ids=None, skip_first: int = 0
):
    """Pooled float32 ``(batch, dim)`` representation of each sentence at decoder block ``layer``.

    ``skip_special_ids``: token ids left out of the pooling where they open a sentence (BOS, markers);
    ``skip_first``: leading real tokens left out by position (see ``losses.drop_leading_positions``).
    """
    hidden = layer_hidden_states(model, input_ids, attention_mask, layer)
    return pool(hidden, pooling_mask(input_ids, attention_mask, skip_first, skip_special_ids or ()), pooling_type)


def aligned_representation(model, input_ids, attention_mask, settings: AlignmentSettings, all_layers: bool = False):
    """The pooled float32 vectors that the alignment loss compares, as ``settings`` (resolved) define them.

    ``(batch, dim)`` at ``settings.additional_loss_layer``; with ``all_layers`` a ``(layer, batch, dim)``
    stack for blocks 1..L pooled the same way, from one early-exit pass (what the analysis reports).
    """
    bos = getattr(unwrap_causal_lm(model).config, "bos_token_id", None)
    skip_special = [bos] if settings.contrastive_pooling_skip_special and isinstance(bos, int) else ()
    mask = pooling_mask(input_ids, attention_mask, settings.contrastive_pooling_skip_first, skip_special)
    hidden = layer_hidden_states(model, input_ids, attention_mask, settings.additional_loss_layer, all_layers)
    if all_layers:
        return torch.stack([pool(states, mask, settings.contrastive_pooling_type) for states in hidden])
    return pool(hidden, mask, settings.contrastive_pooling_type)
