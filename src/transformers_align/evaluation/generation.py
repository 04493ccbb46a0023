"""Batched greedy generation for evaluation: local model (+ PEFT adapter) loading, left padding, KV cache."""

import copy
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from transformers_align.modeling.loading import load_causal_lm, load_tokenizer, with_pad_token


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model_and_tokenizer(
    model_name: str,
    peft_model_id: Optional[str] = None,
    device: Optional[str] = None,
    dtype: Optional[torch.dtype] = None,
):
    """A causal LM and its tokenizer from a local folder or the local cache only (never downloads).

    Loaded as training loads them (``modeling.loading``: attention kernel, EOS as pad token where there is
    none). ``peft_model_id`` is a local folder saved by peft (``adapter_config.json`` + weights). The
    default dtype is bfloat16 on GPU and float32 on CPU. The model is returned in eval mode on ``device``.
    """
    device = device or default_device()
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    tokenizer = load_tokenizer(model_name, local_files_only=True)
    model = load_causal_lm(model_name, dtype, local_files_only=True)
    if peft_model_id:
        if not (Path(peft_model_id) / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"--peft_model_id {peft_model_id}: no adapter_config.json there "
                "(adapters are loaded from local folders only)"
            )
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, peft_model_id)
    return model.to(device).eval(), tokenizer


def _stop_token_ids(model, tokenizer) -> List[int]:
    """The tokenizer's EOS and every EOS id of the model's generation config (Llama-3 Instruct has two)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    configured = configured if isinstance(configured, (list, tuple)) else [configured]
    ids = [tokenizer.eos_token_id, *configured]
    return list(dict.fromkeys(i for i in ids if i is not None))


def generate_greedy(
    model,
    tokenizer,
    prompts: Sequence[str],
    batch_size: int = 16,
    max_new_tokens: int = 128,
    desc: str = "generating",
    sort_by_length: bool = True,
) -> List[str]:
    """Greedy continuations of ``prompts`` (text; the tokenizer adds its special tokens), in prompt order.

    Batches are left-padded on a copy of the tokenizer (the caller's is untouched) and decoded from the
    first new token with special tokens skipped. With ``sort_by_length`` prompts are batched by length
    to waste less padding; the result order does not change.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    tok = with_pad_token(copy.deepcopy(tokenizer))
    tok.padding_side = "left"
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        use_cache=True,
        eos_token_id=_stop_token_ids(model, tok),
        pad_token_id=tok.pad_token_id,
    )
    order = list(range(len(prompts)))
    if sort_by_length:
        lengths = [len(ids) for ids in tok(list(prompts))["input_ids"]] if prompts else []
        order.sort(key=lambda i: -lengths[i])
    device = next(model.parameters()).device
    outputs: List[Optional[str]] = [None] * len(prompts)
    with torch.inference_mode(), tqdm(total=len(prompts), desc=desc, unit="prompt") as progress:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = tok([prompts[i] for i in indices], padding=True, return_tensors="pt").to(device)
            generated = model.generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], generation_config=config
            )
            texts = tok.batch_decode(generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
            for index, text in zip(indices, texts):
                outputs[index] = text
            progress.update(len(indices))
    return outputs
