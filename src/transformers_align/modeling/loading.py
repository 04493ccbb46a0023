"""Loading a causal LM and its tokenizer as training and evaluation both do: dtype, attention kernel, pad token."""

from typing import Union

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

HALF_PRECISION = (torch.float16, torch.bfloat16)  # the dtypes FlashAttention-2 runs in


def resolve_dtype(dtype: Union[None, str, torch.dtype]) -> Union[None, str, torch.dtype]:
    """``from_pretrained``'s ``torch_dtype``: a torch dtype, ``"auto"`` (the checkpoint's), or None (float32)."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}: use bfloat16, float16, float32 or auto")
    return resolved


def attention_implementation(requested: str, config, dtype=None) -> str:
    """``auto``: FlashAttention-2 when installed, on a GPU, in half precision and supported by the model class;
    else sdpa where supported, else eager. Any other value is returned as it is."""
    if requested != "auto":
        return requested
    model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    weights_dtype = getattr(config, "torch_dtype", None) if dtype == "auto" else dtype
    try:
        import flash_attn  # noqa: F401

        flash = torch.cuda.is_available() and weights_dtype in HALF_PRECISION and model_class._supports_flash_attn_2
    except ImportError:
        flash = False
    if flash:
        return "flash_attention_2"
    return "sdpa" if model_class._supports_sdpa else "eager"


def with_pad_token(tokenizer):
    """``tokenizer`` itself, given EOS as its pad token where it has none (labels pad with -100, masks hide pads)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # as mid-align does for Llama-3
    return tokenizer


def load_tokenizer(name_or_path: str, local_files_only: bool = False):
    """The tokenizer, with a pad token (:func:`with_pad_token`)."""
    return with_pad_token(AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only))


def load_causal_lm(
    name_or_path: str,
    dtype: Union[None, str, torch.dtype] = None,
    attn_implementation: str = "auto",
    local_files_only: bool = False,
):
    """The ``*ForCausalLM`` in ``dtype`` (see :func:`resolve_dtype`) with attention kernel ``attn_implementation``."""
    dtype = resolve_dtype(dtype)
    config = AutoConfig.from_pretrained(name_or_path, local_files_only=local_files_only)
    return AutoModelForCausalLM.from_pretrained(
        name_or_path,
        torch_dtype=dtype,
        local_files_only=local_files_only,
        attn_implementation=attention_implementation(attn_implementation, config, dtype),
    )
