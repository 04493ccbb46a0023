"""WMT-style evaluation: BLEU tokenizer choice, hand-computed BLEU, file format errors, COMET skipping,
script end to end."""

import importlib.util
import json
import math

import pytest
from sacrebleu.metrics import BLEU

from scripts import run_inference_eval_wmt23
from tests.support import REPO
from transformers_align.data.jsonl import DataFormatError
from transformers_align.evaluation import wmt
from transformers_align.evaluation.counts import MissingPredictionsError
from transformers_align.evaluation.wmt import (
    bleu_tokenizer,
    comet_score,
    read_test_set,
    read_translations,
    score_translations,
    translation_system_prompt,
)
from transformers_align.tiny import build_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread is faster

WMT_SAMPLE = REPO / "data_example" / "wmt"


def test_prompt():
    assert translation_system_prompt("de", "en") == "Translate the following sentences from German to English."
    with pytest.raises(ValueError, match="unknown language code"):
        translation_system_prompt("xx", "en")


def test_bleu_tokenizer_choice():
    assert bleu_tokenizer("zh") == ("zh", None)
    assert bleu_tokenizer("de") == ("13a", None)
    for lang, package in (("ja", "MeCab"), ("ko", "mecab_ko")):
        name, note = bleu_tokenizer(lang)
        if importlib.util.find_spec(package) is None:
            assert name == "char" and f"{lang}-mecab" in note
        else:
            assert (name, note) == (f"{lang}-mecab", None)


def test_bleu_hand_computed_for_chinese():
    # zh tokenizer: characters. Precisions 4/5, 2/4, 1/3 and, with no 4-gram match, exp smoothing 1/(2*2).
    scores = score_translations(["我喜欢猫。"], ["我喜欢狗。"], "zh")
    assert scores["bleu"] == pytest.approx(100 * (4 / 5 * 2 / 4 * 1 / 3 * 1 / 4) ** 0.25)
    assert "tok:zh" in scores["bleu_signature"]
    # mid-align's default 13a sees one token per sentence here, so BLEU is 0
    assert BLEU(tokenize="13a").corpus_score(["我喜欢猫。"], [["我喜欢狗。"]]).score == 0.0
    perfect = score_translations(["The cat sleeps.", "Hello"], ["The cat sleeps.", "Hello"], "en")
    assert (perfect["bleu"], perfect["chrf"]) == (pytest.approx(100.0), pytest.approx(100.0))


def test_file_errors(tmp_path):
    source, reference = tmp_path / "a.de", tmp_path / "a.en"
    source.write_text("eins\n\nzwei\n", encoding="utf-8")
    reference.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"a\.de:2: blank segment"):
        read_test_set(source, reference)
    source.write_text("eins\nzwei\ndrei\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="has 3 segments but"):
        read_test_set(source, reference)
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(json.dumps({"index": 1, "prediction": "two"}) + "\n")
    with pytest.raises(
        MissingPredictionsError, match=r"p\.jsonl: no prediction for 1 of 2 gold item\(s\) \(first: 0\)"
    ):
        read_translations(predictions, 2)
    predictions.write_text(json.dumps({"index": 5, "prediction": "x"}) + "\n")
    with pytest.raises(DataFormatError, match=r"p\.jsonl:1: field 'index'"):
        read_translations(predictions, 2)


def test_missing_translations_fail_unless_allowed_then_score_as_empty(tmp_path):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(json.dumps({"index": 0, "prediction": "The cat sleeps."}) + "\n")
    with pytest.raises(MissingPredictionsError, match="no prediction for 1 of 2"):
        read_translations(predictions, 2)
    hypotheses, counts = read_translations(predictions, 2, allow_missing=True)
    assert hypotheses == ["The cat sleeps.", ""]
    scores = score_translations(hypotheses, ["The cat sleeps.", "Hello"], "en", counts)
    # 13a: 4 hypothesis tokens, all n-grams right; 5 reference tokens, so only the brevity penalty exp(1 - 5/4).
    assert scores["bleu"] == pytest.approx(100 * math.exp(1 - 5 / 4))
    assert scores["counts"] == {"total": 2, "scored": 1, "missing": 1, "skipped": 0, "skipped_by_reason": {}}
    predictions.write_text("".join(json.dumps({"index": i, "prediction": "x"}) + "\n" for i in range(3)))
    hypotheses, counts = read_translations(predictions, 3, limit=2)
    assert hypotheses == ["x", "x"] and counts.skipped == {"beyond --max_examples": 1} and counts.total == 2


def test_comet_is_skipped_with_a_message(monkeypatch, tmp_path):
    if importlib.util.find_spec("comet") is None:
        assert comet_score(["a"], ["b"], ["c"], str(tmp_path))[1].startswith("COMET skipped: the 'comet' package")
    monkeypatch.setattr(wmt.importlib.util, "find_spec", lambda name: object())
    assert comet_score(["a"], ["b"], ["c"], None) == (
        None,
        "COMET skipped: no local model given (--comet_model PATH to a COMET checkpoint)",
    )
    assert "no checkpoint at" in comet_score(["a"], ["b"], ["c"], str(tmp_path))[1]


def test_script_end_to_end_and_evaluation_only(tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny")
    output, metrics = tmp_path / "out.jsonl", tmp_path / "metrics.json"
    common = [
        "--source-lang",
        "en",
        "--lang",
        "zh",
        "--data-dir",
        str(WMT_SAMPLE),
        "--max-examples",
        "2",
        "--output-file",
        str(output),
        "--metrics-file",
        str(metrics),
    ]
    first = run_inference_eval_wmt23.main(["--model-name", str(model_dir), "--max-new-tokens", "4", *common])
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["index"] for row in rows] == [0, 1]
    assert "Translate the following sentences from English to Chinese." in rows[0]["prompt"]
    assert first["bleu_tokenizer"] == "zh" and first["comet"] is None
    again = run_inference_eval_wmt23.main(["--evaluation-only", *common])
    assert again == json.loads(metrics.read_text()) and again["bleu"] == first["bleu"]
    total = len(read_test_set(WMT_SAMPLE / "en-zh.en", WMT_SAMPLE / "en-zh.zh")[0])
    assert (
        again["counts"]
        == first["counts"]
        == {
            "total": 2,
            "scored": 2,
            "missing": 0,
            "skipped": total - 2,
            "skipped_by_reason": {"beyond --max_examples": total - 2},
        }
    )
