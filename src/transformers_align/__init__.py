"""transformers_align: cross-lingual alignment when fine-tuning decoder LLMs (transformers 4.43.4)."""
from transformers_align.losses import info_nce, pool, similarity_matrix
from transformers_align.modeling import (
    AlignBloomForCausalLM,
    AlignLlamaForCausalLM,
    AlignmentCausalLMOutput,
    AlignmentSettings,
    AlignQwen2ForCausalLM,
    AlignXGLMForCausalLM,
    layer_hidden_states,
    layer_representation,
    patch_model,
)

__version__ = "0.1.0"
