"""Where each supported architecture keeps its decoder blocks and final norm: the one place that knows."""

from dataclasses import dataclass

from transformers import PreTrainedModel

from transformers_align.modeling.settings import AlignmentSettings


@dataclass(frozen=True)
class DecoderLayout:
    """Attribute names of one architecture. Every architecture listed computes its logits as
    ``lm_head(backbone(...).last_hidden_state)``, with no scaling or capping, which the chunked scorers rely on."""

    backbone: str  # attribute of the *ForCausalLM holding the decoder (no LM head)
    blocks: str  # attribute of the backbone holding the nn.ModuleList of decoder blocks
    final_norm: str  # attribute of the backbone holding the norm applied after the last block
    takes_position_ids: bool  # BLOOM's ALiBi is built from the attention mask instead


DECODER_LAYOUTS = {
    "llama": DecoderLayout("model", "layers", "norm", True),
    "qwen2": DecoderLayout("model", "layers", "norm", True),
    "xglm": DecoderLayout("model", "layers", "layer_norm", True),
    "bloom": DecoderLayout("transformer", "h", "ln_f", False),
}


# Config fields of heads that are not a plain linear map (Gemma-2 caps its logits with tanh, Cohere scales them):
# the chunked scorers (causal_lm_loss, consistency) apply the LM head alone, so they would differ from stock.
HEAD_TRANSFORMS = ("final_logit_softcapping", "logit_scale")


def decoder_layout(config) -> DecoderLayout:
    model_type = getattr(config, "model_type", None)
    if model_type not in DECODER_LAYOUTS:
        raise ValueError(
            f"model type {model_type!r} is not supported; supported model types: {', '.join(sorted(DECODER_LAYOUTS))}"
        )
    transformed = [name for name in HEAD_TRANSFORMS if getattr(config, name, None) is not None]
    if transformed:
        raise ValueError(
            f"model type {model_type!r} has {transformed[0]}={getattr(config, transformed[0])}: its logits are not "
            "lm_head(hidden), which the chunked losses assume; apply it in them first (docs/extending.md)"
        )
    return DECODER_LAYOUTS[model_type]


def unwrap_causal_lm(model):
    """The ``*ForCausalLM`` inside DDP/DeepSpeed wrappers and PEFT models (LoRA, IA3)."""
    while not isinstance(model, PreTrainedModel) and hasattr(model, "module"):
        model = model.module  # DistributedDataParallel, DeepSpeedEngine
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()  # peft.PeftModel
    return model


def decoder_backbone(causal_lm):
    """The decoder of a supported ``*ForCausalLM`` without its LM head (``model`` in Llama,
    ``transformer`` in BLOOM)."""
    return getattr(causal_lm, decoder_layout(causal_lm.config).backbone)


def num_blocks(causal_lm) -> int:
    return len(getattr(decoder_backbone(causal_lm), decoder_layout(causal_lm.config).blocks))


def resolved_settings(causal_lm) -> AlignmentSettings:
    """The model's saved alignment settings, validated against its depth."""
    return AlignmentSettings.from_config(causal_lm.config).resolved(num_blocks(causal_lm))
