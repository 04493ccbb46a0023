"""modeling.loading: the attention kernel ``auto`` picks, dtype names, and the shared loaders."""
import pytest
import torch
from conftest import ARCHITECTURES
from transformers import AutoModelForCausalLM

from transformers_align.modeling.loading import attention_implementation, resolve_dtype
from transformers_align.tiny import tiny_config


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_auto_attention_is_what_transformers_picks_without_flash_attn(model_type):
    """Without FlashAttention-2 (CPU here), ``auto`` is transformers' own default: sdpa where the class has it."""
    config = tiny_config(model_type)
    stock = AutoModelForCausalLM.from_config(config).config._attn_implementation
    assert attention_implementation("auto", config, torch.bfloat16) == stock
    assert attention_implementation("eager", config) == "eager"  # an explicit choice is kept


def test_resolve_dtype():
    assert resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype(torch.float16) is torch.float16
    assert resolve_dtype("auto") == "auto" and resolve_dtype(None) is None
    with pytest.raises(ValueError, match="unknown dtype 'bf16'"):
        resolve_dtype("bf16")
