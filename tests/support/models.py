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
