"""Which attention kernel and dtype a causal LM is loaded with: the transformers facts loading depends on."""
from typing import Union

import torch
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
    """``auto``: FlashAttention-2 when installed, on a GPU, in half precision and supported, else sdpa where supported, else eager."""
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
