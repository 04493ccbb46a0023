"""transformers_align: cross-lingual alignment when fine-tuning decoder LLMs (transformers 4.43.4).

Names are imported on first use, so ``import transformers_align.merging`` (or any light submodule)
does not pay for loading the transformers model classes.
"""

from transformers_align.lazy import lazy_exports

__version__ = "0.2.0"

_EXPORTS = {
    "info_nce": "transformers_align.losses",
    "pool": "transformers_align.losses",
    "similarity_matrix": "transformers_align.losses",
    "encode": "transformers_align.evaluation.encoding",
    "SentenceEncoder": "transformers_align.evaluation.encoding",
    "AlignLlamaForCausalLM": "transformers_align.modeling",
    "AlignQwen2ForCausalLM": "transformers_align.modeling",
    "AlignXGLMForCausalLM": "transformers_align.modeling",
    "AlignBloomForCausalLM": "transformers_align.modeling",
    "AlignmentCausalLMOutput": "transformers_align.modeling",
    "AlignmentSettings": "transformers_align.modeling",
    "aligned_representation": "transformers_align.modeling",
    "layer_hidden_states": "transformers_align.modeling",
    "layer_representation": "transformers_align.modeling",
    "patch_model": "transformers_align.modeling",
    "AlignmentTrainer": "transformers_align.training.trainer",
    "AlignmentTrainingArguments": "transformers_align.training.arguments",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
