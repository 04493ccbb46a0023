"""modeling.loading: the attention kernel ``auto`` picks, dtype names, and the shared loaders."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.support.models import ARCHITECTURES
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


def test_loaders_give_training_and_evaluation_the_same_model(tmp_path):
    """Training's ``load_model`` and evaluation's loader both use ``modeling.loading``: same weights, kernel, pad."""
    from types import SimpleNamespace

    from transformers_align.evaluation.generation import load_model_and_tokenizer
    from transformers_align.tiny import build_tiny_model
    from transformers_align.training.arguments import ModelArguments
    from transformers_align.training.run import load_model, load_tokenizer

    folder = build_tiny_model(tmp_path / "qwen2", "qwen2")
    model_args = ModelArguments(model_name_or_path=str(folder), torch_dtype="float32")
    no_settings = SimpleNamespace(settings=dict)
    trained = load_model(model_args, no_settings, SimpleNamespace(gradient_checkpointing=False))
    evaluated, tokenizer = load_model_and_tokenizer(str(folder), device="cpu")
    stock = AutoModelForCausalLM.from_pretrained(folder)
    kernels = {model.config._attn_implementation for model in (trained, evaluated, stock)}
    assert len(kernels) == 1
    for name, weight in stock.state_dict().items():
        assert torch.equal(trained.state_dict()[name], weight) and torch.equal(evaluated.state_dict()[name], weight)
    # the tokenizer's own pad token is kept, not replaced by EOS
    assert load_tokenizer(model_args).pad_token == tokenizer.pad_token == "<|finetune_right_pad_id|>"


def test_with_pad_token_uses_eos_only_where_there_is_none(tokenizer):
    import copy

    from transformers_align.modeling.loading import with_pad_token

    unpadded = copy.deepcopy(tokenizer)
    unpadded.pad_token = None
    assert with_pad_token(unpadded).pad_token == tokenizer.eos_token
    assert with_pad_token(copy.deepcopy(tokenizer)).pad_token == tokenizer.pad_token
