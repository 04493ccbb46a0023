"""The layer-L representation by early exit: run decoder blocks 1..L only, never the final norm or LM head.

The block list is truncated for the duration of one call and the final norm swapped for an identity, so
the backbone's own ``last_hidden_state`` is the output of block L (= stock ``hidden_states[L]``). No
forward code is copied, so a transformers upgrade touches only ``registry.py``; it works the same with
PEFT adapters, gradient checkpointing (reentrant or not) and autocast.
"""
from contextlib import contextmanager

from torch import nn

from transformers_align.losses import drop_leading_special_tokens, pool
from transformers_align.modeling.registry import decoder_layout, num_blocks, unwrap_causal_lm


@contextmanager
def truncated_to_layer(causal_lm, layer: int):
    """Within the block, ``causal_lm``'s backbone runs blocks 1..``layer`` and skips its final norm."""
    layout = decoder_layout(causal_lm.config)
    total = num_blocks(causal_lm)
    if not 1 <= layer <= total:
        raise ValueError(f"layer {layer} is out of range: this model has {total} decoder blocks, so the layer must be between 1 and {total}")
    backbone = getattr(causal_lm, layout.backbone)
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


def layer_hidden_states(model, input_ids, attention_mask, layer: int):
    """``(batch, time, dim)`` output of decoder block ``layer`` (1-indexed), computed by early exit."""
    causal_lm = unwrap_causal_lm(model)
    extra = {}
    if decoder_layout(causal_lm.config).takes_position_ids:
        extra["position_ids"] = positions_from_mask(attention_mask)
    with truncated_to_layer(causal_lm, layer) as backbone:
        out = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=True, **extra)
    return out.last_hidden_state


def layer_representation(model, input_ids, attention_mask, layer: int, pooling_type: str = "mean", skip_special_ids=None):
    """Pooled float32 ``(batch, dim)`` representation of each sentence at decoder block ``layer``.

    ``skip_special_ids``: token ids left out of the pooling where they open a sentence (BOS, markers).
    """
    hidden = layer_hidden_states(model, input_ids, attention_mask, layer)
    mask = drop_leading_special_tokens(input_ids, attention_mask, skip_special_ids) if skip_special_ids else attention_mask
    return pool(hidden, mask, pooling_type)

