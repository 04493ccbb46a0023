"""Model side of transformers_align: layer-L representations and the aligned causal-LM classes.

Names are imported on first use: the objectives import this package's lower modules (settings, registry,
the losses), and the aligned classes import the objectives, so importing them all here would be a cycle.
"""

from transformers_align.lazy import lazy_exports

_EXPORTS = {
    "AlignedCausalLMMixin": "transformers_align.modeling.aligned",
    "AlignmentCausalLMOutput": "transformers_align.modeling.aligned",
    "ALIGNED_CLASSES": "transformers_align.modeling.classes",
    "AlignBloomForCausalLM": "transformers_align.modeling.classes",
    "AlignLlamaForCausalLM": "transformers_align.modeling.classes",
    "AlignQwen2ForCausalLM": "transformers_align.modeling.classes",
    "AlignXGLMForCausalLM": "transformers_align.modeling.classes",
    "patch_model": "transformers_align.modeling.classes",
    "DECODER_LAYOUTS": "transformers_align.modeling.registry",
    "decoder_backbone": "transformers_align.modeling.registry",
    "decoder_layout": "transformers_align.modeling.registry",
    "num_blocks": "transformers_align.modeling.registry",
    "unwrap_causal_lm": "transformers_align.modeling.registry",
    "aligned_representation": "transformers_align.modeling.representation",
    "layer_hidden_states": "transformers_align.modeling.representation",
    "layer_representation": "transformers_align.modeling.representation",
    "truncated_to_layer": "transformers_align.modeling.representation",
    "AlignmentSettings": "transformers_align.modeling.settings",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
