"""MGSM evaluator: number extraction, scoring with parse failures, file loading, and a run on the tiny model."""

import json

import pytest

from scripts import eval_mgsm
from tests.support import REPO
from transformers_align.data.jsonl import DataFormatError
from transformers_align.evaluation import mgsm
from transformers_align.evaluation.mgsm import (
    MgsmItem,
    build_prompt,
    evaluate_mgsm,
    extract_number,
    load_mgsm,
    score_mgsm,
)
from transformers_align.tiny import build_tiny_model

SAMPLES = REPO / "data_example" / "adamergex"


@pytest.mark.parametrize(
    "generation, expected",
    [
        ("He has 12 - 5 = 7 left. The answer is 7.", 7),
        ("The total is 1,000 shillings.", 1000),
        ("It carries 10,000 kg in 1,250.5 steps", 1250.5),
        ("Each costs $3.50.", 3.5),
        ("The temperature is -4 degrees", -4),
        ("The level is \u22122 metres", -2),
        ("5-3=2", 2),
        ("COVID-19", 19),
        ("The answer is 7.\n\nQuestion: Tom has 30 apples. How many?\nAnswer: 30", 7),
        ("答案是42。", 42),
        ("Between 2,5 and 8", 8),
        ("no number at all", None),
        ("", None),
    ],
)
def test_extract_number(generation, expected):
    assert extract_number(generation) == expected


def test_score_counts_parse_failures_and_never_reads_the_prompt():
    items = [
        MgsmItem("Tom has 3 apples and buys 4. How many?", 7),
        MgsmItem("What is 10 * 100?", 1000),
        MgsmItem("A debt of 5?", -5),
        MgsmItem("How many legs do 3 cats have?", 12),
    ]
    generations = ["3 + 4 = 7. The answer is 7.", "10 * 100 = 1,000", "I do not know.", "The answer is 13."]
    result = score_mgsm(items, generations)
    assert result["metrics"] == {
        "accuracy": 0.5,
        "correct": 2,
        "parse_failures": 1,
        "counts": {"total": 4, "scored": 4, "missing": 0, "skipped": 0, "skipped_by_reason": {}},
    }
    assert [r["prediction"] for r in result["records"]] == [7, 1000, None, 13]
    assert [r["correct"] for r in result["records"]] == [True, True, False, False]
    with pytest.raises(ValueError, match="4 items but 3"):
        score_mgsm(items, generations[:3])


def test_prompt_is_adamergex_template():
    assert build_prompt("What is 2 + 2?") == "Let's think step by step.\n\nQuestion: What is 2 + 2?\nAnswer: "


def test_load_shipped_tsv_and_jsonl(tmp_path):
    english, swahili = load_mgsm(SAMPLES / "mgsm_en.tsv"), load_mgsm(SAMPLES / "mgsm_sw.tsv")
    assert len(english) == len(swahili) == 10
    assert [i.answer_number for i in english] == [i.answer_number for i in swahili]
    assert english[6].answer_number == 10000 and english[8].answer_number == -2
    headed = tmp_path / "h.tsv"
    headed.write_text("question\tanswer_number\nHow many?\t1,200\n", encoding="utf-8")
    assert load_mgsm(headed) == [MgsmItem("How many?", 1200.0)]
    records = tmp_path / "m.jsonl"
    records.write_text('{"question": "Q1", "answer_number": 3}\n{"question": "Q2", "answer_number": "4"}\n')
    assert load_mgsm(records) == [MgsmItem("Q1", 3.0), MgsmItem("Q2", 4.0)]


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "a.tsv",
            "How many?\t12\nno tab here\n",
            r"a.tsv:2: expected 2 tab-separated columns, found 1 \(question<TAB>answer_number\)",
        ),
        ("b.tsv", "How many?\ttwelve\n", r"b.tsv:1: answer_number must be a number"),
        ("c.jsonl", '{"question": "Q"}\n', r"c.jsonl:1: missing field 'answer_number'"),
        ("d.jsonl", '{"question": "Q", "answer_number": [1]}\n', r"d.jsonl:1: answer_number must be a number"),
        ("e.tsv", "\n", r"no MGSM items"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=message):
        load_mgsm(path)


def test_evaluate_scores_only_the_generated_answer(monkeypatch):
    seen = {}

    def fake_generate(model, tokenizer, prompts, **kwargs):
        seen["prompts"] = prompts
        return ["The answer is 105.", "Hmm."]

    monkeypatch.setattr(mgsm, "generate_greedy", fake_generate)
    items = load_mgsm(SAMPLES / "mgsm_en.tsv")[:2]
    result = evaluate_mgsm(None, None, items)
    assert seen["prompts"] == [build_prompt(item.question) for item in items]
    # The second question contains 32, but its answer has no number: a parse failure, not 32.
    assert {k: result["metrics"][k] for k in ("accuracy", "correct", "parse_failures")} == {
        "accuracy": 0.5,
        "correct": 1,
        "parse_failures": 1,
    }
    assert result["metrics"]["counts"]["total"] == 2


def test_script_runs_on_the_tiny_model(tmp_path, capsys):
    model_dir = build_tiny_model(tmp_path / "tiny")
    metrics_file, predictions = tmp_path / "metrics.json", tmp_path / "predictions.jsonl"
    eval_mgsm.main(
        [
            "--data",
            str(SAMPLES / "mgsm_sw.tsv"),
            "--model-name",
            str(model_dir),
            "--device",
            "cpu",
            "--max-new-tokens",
            "4",
            "--batch-size",
            "2",
            "--max-examples",
            "3",
            "--output-json",
            str(metrics_file),
            "--predictions",
            str(predictions),
        ]
    )
    metrics = json.loads(metrics_file.read_text())
    assert metrics["counts"] == {
        "total": 3,
        "scored": 3,
        "missing": 0,
        "skipped": 7,
        "skipped_by_reason": {"beyond --max_examples": 7},
    }
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == metrics
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    # Only new tokens are decoded: at most 4 byte-level tokens, never the prompt.
    assert len(rows) == 3 and all(len(row["generation"]) <= 4 for row in rows)
    assert metrics["correct"] == sum(row["correct"] for row in rows)
