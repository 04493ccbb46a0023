"""The embedded default: a byte-level tokenizer and tiny random models that need no download.

The tokenizer maps every UTF-8 byte to one token (any script works) and adds Llama-3's special tokens
and chat format, so the shipped data (Llama-3 chat prompts) means the same to it as to Llama-3. The
models are random initialisations from small configs of the four supported architectures.
"""

import json
import os
from pathlib import Path
from typing import Dict

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

BOS, EOS, EOT, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>"
SPECIAL_TOKENS = [BOS, EOS, "<|start_header_id|>", "<|end_header_id|>", EOT, PAD]

# Llama-3's chat format with a newline after every <|eot_id|>, as mid-align's training data has it.
# BOS is not in the template: the tokenizer adds it when it encodes, as Llama-3's does.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

TINY_RECIPE_FILE = "tiny_model_recipe.json"  # marks a folder as made by build_tiny_model

TINY_ARCHITECTURES = {
    "llama": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    ),
    "qwen2": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    ),
    "xglm": dict(d_model=64, ffn_dim=128, num_layers=4, attention_heads=4, max_position_embeddings=2048),
    "bloom": dict(hidden_size=64, n_layer=4, n_head=4),
}


def byte_symbols() -> Dict[int, str]:
    """The byte-to-symbol table of byte-level BPE (GPT-2's, which the ``tokenizers`` ByteLevel pre-tokenizer uses).

    Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, ...) take the code
    points from 256 upwards, in byte order. Token id = byte value, since the vocabulary is built from it.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), 256)]
    others = [byte for byte in range(256) if byte not in printable]
    return {**{byte: chr(byte) for byte in printable}, **{byte: chr(256 + n) for n, byte in enumerate(others)}}


def byte_level_tokenizer() -> PreTrainedTokenizerFast:
    """A 262-token byte-level tokenizer with Llama-3's specials and chat format; it adds BOS, pads right."""
    byte_to_symbol = byte_symbols()
    vocab = {byte_to_symbol[byte]: byte for byte in range(256)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIAL_TOKENS)
    bos_id = core.token_to_id(BOS)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=PAD,
        padding_side="right",
        model_max_length=2048,
        chat_template=CHAT_TEMPLATE,
        model_input_names=["input_ids", "attention_mask"],
    )
    return tokenizer


def tiny_config(model_type: str, tokenizer=None, **overrides):
    """A small config of ``model_type`` whose special-token ids match ``tokenizer`` (default: the byte-level one)."""
    if model_type not in TINY_ARCHITECTURES:
        raise ValueError(f"no tiny config for model type {model_type!r}; available: {', '.join(TINY_ARCHITECTURES)}")
    tokenizer = tokenizer or byte_level_tokenizer()
    values = dict(
        TINY_ARCHITECTURES[model_type],
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    values.update(overrides)
    return AutoConfig.for_model(model_type, **values)


def build_tiny_model(output_dir, model_type: str = "llama", seed: int = 0, **overrides) -> Path:
    """Write a random tiny ``model_type`` model and the byte-level tokenizer to ``output_dir``.

    Deterministic for a seed. A directory already built with the same arguments is reused, one built
    with others is rebuilt; a non-empty folder this function did not make is refused, never replaced.
    """
    import shutil
    import tempfile

    import torch

    output_dir = Path(output_dir)
    recipe = {"model_type": model_type, "seed": seed, "overrides": overrides}
    marker = output_dir / TINY_RECIPE_FILE
    if marker.exists() and json.loads(marker.read_text()) == recipe:
        return output_dir
    if output_dir.is_dir() and any(output_dir.iterdir()) and not marker.exists():
        raise FileExistsError(f"{output_dir} is not empty and holds no tiny model: choose an empty or new folder")
    tokenizer = byte_level_tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(model_type, tokenizer, **overrides))
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}."))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / TINY_RECIPE_FILE).write_text(json.dumps(recipe))
    if marker.exists() and json.loads(marker.read_text()) == recipe:  # built meanwhile by a concurrent call
        shutil.rmtree(staging)
        return output_dir
    if output_dir.exists():  # empty, or a tiny model of another recipe: both ours to replace
        previous = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}.old."))
        os.replace(output_dir, previous / "model")
        shutil.rmtree(previous)
    try:
        os.replace(staging, output_dir)
    except OSError:  # a concurrent call renamed its build into place first
        shutil.rmtree(staging)
        if not (marker.exists() and json.loads(marker.read_text()) == recipe):
            raise
    return output_dir
