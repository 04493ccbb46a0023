"""The cost section: bits per byte against a full-logits recomputation, answer matching, the counts, the report."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.support import REPO
from tests.support.models import save_random_adapter
from transformers_align.evaluation.general_ability import (
    QUESTIONS,
    ability_cost,
    english_bits_per_byte,
    format_ability_cost,
    general_ability,
    held_out_english,
    is_right,
)
from transformers_align.evaluation.run_report import alignment_run_report

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_held_out_text_is_english_prose():
    paragraphs = held_out_english()
    assert len(paragraphs) == 40 and paragraphs == held_out_english()
    assert all(len(p.split()) >= 30 and "::=" not in p and "\n" not in p for p in paragraphs)


def test_bits_per_byte_against_the_full_logits(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = held_out_english(3)
    got = english_bits_per_byte(model, tokenizer, texts, batch_size=2)
    nats, tokens, scored_bytes = 0.0, 0, 0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text).input_ids])
            logprobs = model(input_ids=ids).logits[0, :-1].double().log_softmax(-1)
            nats -= logprobs.gather(1, ids[0, 1:, None]).sum().item()
            tokens += ids.shape[1] - 1
            scored_bytes += len(tokenizer.decode(ids[0, 1:], skip_special_tokens=True).encode("utf-8"))
    assert got["tokens"] == tokens and got["bytes"] == scored_bytes
    assert got["bits_per_byte"] == pytest.approx(nats / math.log(2) / scored_bytes, rel=1e-4)
    assert got["perplexity"] == pytest.approx(math.exp(nats / tokens), rel=1e-4)


def test_an_answer_is_right_when_it_holds_the_expected_word():
    assert is_right("The capital of France is Paris.", ("Paris",))
    assert is_right("paris", ("Paris",)) and is_right("There are 7 days.", ("seven", "7"))
    assert not is_right("The capital of France is named after the Romance languages.", ("Paris",))
    assert not is_right("Parisian food", ("Paris",)) and not is_right("17 days", ("seven", "7"))


def test_the_cost_counts_the_base_right_answers_that_stay_right():
    def answers(rights):
        return {
            "english": {"bits_per_byte": 1.0, "perplexity": 2.0, "tokens": 9},
            "questions": [{"question": q, "answer": "a", "right": r} for (q, _), r in zip(QUESTIONS, rights)],
        }

    before = answers([True, True, False, True] + [False] * 6)
    after = answers([True, False, True, True] + [False] * 6)
    cost = ability_cost(before, after)
    assert (cost["questions"], cost["right_before"], cost["right_after"], cost["stayed_right"]) == (10, 3, 3, 2)
    lines = format_ability_cost(cost)
    assert "2 of the 3 the base model answers right stay right" in lines[2]
    assert lines[3].startswith("    lost: What is the capital of Japan?")


def test_the_run_report_measures_the_base_model_and_the_adapter(tmp_path):
    from peft import PeftModel

    base, adapter = save_random_adapter(tmp_path, {"additional_loss_layer": 2})
    report = alignment_run_report(base, adapter, REPO / "data_example" / "afp" / "en-zh.tsv", max_new_tokens=2)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(base).eval(), AutoTokenizer.from_pretrained(base)
    before = general_ability(model, tokenizer)
    after = general_ability(PeftModel.from_pretrained(model, adapter).eval(), tokenizer)
    cost = report["general_ability"]
    for measured, expected in ((cost["before"], before), (cost["after"], after)):
        assert measured["english"]["bits_per_byte"] == pytest.approx(expected["english"]["bits_per_byte"], rel=1e-5)
        assert [q["answer"] for q in measured["questions"]] == [q["answer"] for q in expected["questions"]]
    assert cost["before"]["english"]["bits_per_byte"] != pytest.approx(cost["after"]["english"]["bits_per_byte"])
