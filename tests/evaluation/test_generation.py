"""Batched greedy generation (left padding equals one at a time) and MASSIVE inference + evaluation end
to end on the tiny model."""

import json

import pytest

from scripts import eval_massive, run_inference_massive
from tests.support import REPO
from transformers_align.evaluation.counts import MissingPredictionsError
from transformers_align.evaluation.generation import generate_greedy, load_model_and_tokenizer
from transformers_align.tiny import build_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread is faster

MASSIVE_SAMPLE = REPO / "data_example" / "massive"
PROMPTS = ["wake me up at five am", "明天早上七点叫我", "hi", "Какая погода завтра в Москве?", "play queen"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture(scope="module")
def adapter_dir(tiny_dir, tmp_path_factory):
    """A freshly initialised LoRA adapter saved by peft, with non-zero B so that it changes the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_dir),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.5)
    path = tmp_path_factory.mktemp("adapter") / "lora"
    model.save_pretrained(path)
    return path


def test_batched_equals_one_at_a_time_and_keeps_order(tiny_dir):
    model, tokenizer = load_model_and_tokenizer(str(tiny_dir), device="cpu")
    batched = generate_greedy(model, tokenizer, PROMPTS, batch_size=5, max_new_tokens=8)
    single = [generate_greedy(model, tokenizer, [prompt], batch_size=1, max_new_tokens=8)[0] for prompt in PROMPTS]
    unsorted = generate_greedy(model, tokenizer, PROMPTS, batch_size=2, max_new_tokens=8, sort_by_length=False)
    assert batched == single == unsorted
    assert tokenizer.padding_side == "right"  # the caller's tokenizer is untouched


def test_bad_batch_size_and_missing_adapter(tiny_dir, tmp_path):
    model, tokenizer = load_model_and_tokenizer(str(tiny_dir), device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        generate_greedy(model, tokenizer, PROMPTS, batch_size=0)
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        load_model_and_tokenizer(str(tiny_dir), peft_model_id=str(tmp_path), device="cpu")


def test_massive_inference_then_eval_end_to_end(tiny_dir, adapter_dir, tmp_path):
    predictions = tmp_path / "pred.jsonl"
    common = ["--lang", "zh", "--partition", "test", "--data-dir", str(MASSIVE_SAMPLE)]
    run_inference_massive.main(
        [
            "--model-name",
            str(tiny_dir),
            "--peft-model-id",
            str(adapter_dir),
            *common,
            "--max-examples",
            "3",
            "--batch-size",
            "2",
            "--max-new-tokens",
            "6",
            "--output-file",
            str(predictions),
        ]
    )
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    assert [set(row) for row in rows] == [{"id", "locale", "utt", "prompt", "prediction"}] * 3
    assert [row["id"] for row in rows] == ["61", "62", "63"] and rows[0]["locale"] == "zh-CN"
    assert "intent: name" in rows[0]["prompt"] and not rows[0]["prompt"].startswith("<|begin_of_text|>")

    metrics = tmp_path / "metrics.json"
    with pytest.raises(MissingPredictionsError, match=f"{predictions}: no prediction for 21 of 24 gold"):
        eval_massive.main(["--pred-slots-file", str(predictions), *common])
    scores = eval_massive.main(
        ["--pred-slots-file", str(predictions), *common, "--output-json", str(metrics), "--max-examples", "3"]
    )
    assert json.loads(metrics.read_text())["counts"] == {
        "total": 3,
        "scored": 3,
        "missing": 0,
        "skipped": 21,
        "skipped_by_reason": {"beyond --max_examples": 21},
    }
    everything = eval_massive.main(["--pred_slots_file", str(predictions), *common, "--allow_missing"])
    assert (everything.counts.scored, everything.counts.missing, everything.counts.total) == (3, 21, 24)
    assert everything.exact_match == pytest.approx(scores.exact_match * 3 / 24)

    base = tmp_path / "base.jsonl"
    run_inference_massive.main(
        [
            "--model-name",
            str(tiny_dir),
            *common,
            "--max-examples",
            "3",
            "--batch-size",
            "3",
            "--max-new-tokens",
            "6",
            "--output-file",
            str(base),
        ]
    )
    assert [json.loads(line)["prediction"] for line in base.read_text(encoding="utf-8").splitlines()] != [
        row["prediction"] for row in rows
    ], "the adapter should change the greedy outputs"
