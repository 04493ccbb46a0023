"""Model side of transformers_align: layer-L representations and the aligned causal-LM classes."""

from transformers_align.modeling.aligned import AlignedCausalLMMixin, AlignmentCausalLMOutput
from transformers_align.modeling.classes import (
    ALIGNED_CLASSES,
    AlignBloomForCausalLM,
    AlignLlamaForCausalLM,
    AlignQwen2ForCausalLM,
    AlignXGLMForCausalLM,
    patch_model,
)
from transformers_align.modeling.registry import (
    DECODER_LAYOUTS,
    decoder_backbone,
    decoder_layout,
    num_blocks,
    unwrap_causal_lm,
)
from transformers_align.modeling.representation import (
    aligned_representation,
    layer_hidden_states,
    layer_representation,
    truncated_to_layer,
)
from transformers_align.modeling.settings import AlignmentSettings

__all__ = [
    "ALIGNED_CLASSES",
    "DECODER_LAYOUTS",
    "AlignBloomForCausalLM",
    "AlignLlamaForCausalLM",
    "AlignQwen2ForCausalLM",
    "AlignXGLMForCausalLM",
    "AlignedCausalLMMixin",
    "AlignmentCausalLMOutput",
    "AlignmentSettings",
    "aligned_representation",
    "decoder_backbone",
    "decoder_layout",
    "layer_hidden_states",
    "layer_representation",
    "num_blocks",
    "patch_model",
    "truncated_to_layer",
    "unwrap_causal_lm",
]
