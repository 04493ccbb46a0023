"""Drop-in aligned classes for the four supported architectures, and ``patch_model`` for loaded models."""

from transformers import BloomForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM, XGLMForCausalLM

from transformers_align.modeling.aligned import AlignedCausalLMMixin
from transformers_align.modeling.registry import decoder_layout, num_blocks, unwrap_causal_lm
from transformers_align.modeling.settings import AlignmentSettings
from transformers_align.objectives.registry import write_settings


class AlignLlamaForCausalLM(AlignedCausalLMMixin, LlamaForCausalLM):
    """``LlamaForCausalLM`` that also computes the layer-L alignment loss of parallel sentences."""


class AlignQwen2ForCausalLM(AlignedCausalLMMixin, Qwen2ForCausalLM):
    """``Qwen2ForCausalLM`` that also computes the layer-L alignment loss of parallel sentences."""


class AlignXGLMForCausalLM(AlignedCausalLMMixin, XGLMForCausalLM):
    """``XGLMForCausalLM`` that also computes the layer-L alignment loss of parallel sentences."""


class AlignBloomForCausalLM(AlignedCausalLMMixin, BloomForCausalLM):
    """``BloomForCausalLM`` that also computes the layer-L alignment loss of parallel sentences."""


ALIGNED_CLASSES = {
    LlamaForCausalLM: AlignLlamaForCausalLM,
    Qwen2ForCausalLM: AlignQwen2ForCausalLM,
    XGLMForCausalLM: AlignXGLMForCausalLM,
    BloomForCausalLM: AlignBloomForCausalLM,
}


def patch_model(model, **settings):
    """Give an already loaded model (plain, PEFT-wrapped or DDP-wrapped) the aligned forward, in place.

    ``settings`` are the objectives' settings fields (:class:`AlignmentSettings`, ``ConsistencySettings``, ...);
    they are written into the model config, so they are saved with it. Returns ``model`` itself.
    """
    causal_lm = unwrap_causal_lm(model)
    decoder_layout(causal_lm.config)  # rejects unsupported model types
    stock = type(causal_lm)
    if not isinstance(causal_lm, AlignedCausalLMMixin):
        aligned = ALIGNED_CLASSES.get(stock) or type(f"Align{stock.__name__}", (AlignedCausalLMMixin, stock), {})
        causal_lm.__class__ = aligned
    settings = write_settings(causal_lm.config, settings)  # the other objectives' settings
    resolved = AlignmentSettings.from_config(causal_lm.config, **settings).resolved(num_blocks(causal_lm))
    resolved.write_to(causal_lm.config)
    return model
