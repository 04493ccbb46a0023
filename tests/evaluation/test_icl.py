"""ICL evaluation: AFP's templates, the XNLI fix, readers, cross-lingual demonstrations, the script end to end."""

import json

import pytest
import torch

from scripts import eval_icl
from tests.support import REPO
from tests.support.models import make_model
from transformers_align.data.jsonl import DataFormatError
from transformers_align.evaluation.icl import evaluate as icl_evaluate
from transformers_align.evaluation.icl import get_task, render
from transformers_align.evaluation.icl.evaluate import (
    build_items,
    connector_text,
    demonstrations,
    predictions,
    score_items,
)
from transformers_align.evaluation.icl.readers import read_xnli, read_xwinograd
from transformers_align.tiny import build_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread is faster

DATA = REPO / "data_example" / "icl"


def read(task, lang, split):
    task = get_task(task)
    return task.read(DATA / (task.dev_file if split == "dev" else task.test_file).format(lang=lang))


def test_templates_render_as_afp():
    xnli = render(get_task("xnli"), {"premise": "P.", "hypothesis": "H.", "label": 1}, "en")
    assert xnli.context == (
        "Premise: P.\nHypothesis: H.\nQuestion: What is the relationship between premise and hypothesis, "
        "entailment, neutral, or contradiction?\nAnswer: "
    )
    assert xnli.continuations == ["entailment", "neutral", "contradiction"] and xnli.demonstration.endswith(
        "Answer: neutral"
    )
    assert (
        render(get_task("xnli"), {"premise": "P", "hypothesis": "H", "label": 2}, "zh").demonstration
        == "前提：P\n假设：H\n问题: 前提和假设之间是什么关系，蕴涵，中立，还是矛盾？\n回答：矛盾"
    )
    pawsx = render(get_task("pawsx"), {"sentence1": "A", "sentence2": "B", "label": 0}, "zh")
    assert (pawsx.context, pawsx.continuations) == ("A，对吗？ ", ["对，B", "不对，B"])
    xcopa = render(
        get_task("xcopa"),
        {"premise": "It rained.", "choice1": "x", "choice2": "y", "question": "cause", "label": 0},
        "zh",
    )
    assert (xcopa.context, xcopa.continuations) == ("起因: It rained. 因为 ", ["x", "y"])
    story = {
        "sentence1": "One.",
        "sentence2": "Two.",
        "sentence3": "三。",
        "sentence4": "Four.",
        "ending1": "E1",
        "ending2": "E2",
        "label": 1,
    }
    assert render(get_task("xstorycloze"), story, "en").context == "One. Two. 三。Four. "
    wino = render(
        get_task("xwinograd"),
        {"sentence_part1": "A ", "sentence_part2": " b.", "option1": "x", "option2": "y", "label": 1},
        "en",
    )
    assert (wino.context, wino.continuations) == ("A ", ["x b.", "y b."])


def test_unknown_prompt_language_falls_back_to_english():
    item = render(get_task("pawsx"), {"sentence1": "A", "sentence2": "B", "label": 0}, "de")
    assert item.continuations == ["Yes, B", "No, B"]


def biased_model(tokenizer, letters):
    """A model whose next-token distribution, whatever the context, puts its mass on ``letters``."""
    model = make_model("llama", num_hidden_layers=1)
    head = torch.nn.Linear(model.config.hidden_size, len(tokenizer), bias=True)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    for letter in set(letters):
        head.bias.data[tokenizer.convert_tokens_to_ids(letter)] = 20.0
    model.lm_head = head
    return model


@pytest.mark.parametrize("label", [0, 1, 2])
def test_xnli_candidates_differ_and_the_preferred_label_wins(tokenizer, label):
    task = get_task("xnli")
    items = build_items(task, [], read("xnli", "zh", "test")[:4], "en", "\n\n")
    assert all(len(set(item.continuations)) == 3 for item in items)
    model = biased_model(tokenizer, ["entailment", "neutral", "contradiction"][label])
    chosen = predictions(items, score_items(model, tokenizer, items, progress=False))
    assert chosen == [label] * len(items)


def test_demonstrations_come_from_the_prompt_language_dev_file(monkeypatch, tokenizer):
    dev_en, test_zh = read("pawsx", "en", "dev"), read("pawsx", "zh", "test")
    demos = demonstrations(dev_en, 3, seed=1)
    assert demos == demonstrations(dev_en, 3, seed=1) != demonstrations(dev_en, 3, seed=2)
    assert demos == demonstrations(dev_en, 5, seed=1)[:3]
    with pytest.raises(ValueError, match="only 8 records"):
        demonstrations(dev_en, 9, seed=0)
    seen = []
    monkeypatch.setattr(
        icl_evaluate, "score_items", lambda model, tok, items, *a: seen.extend(items) or [[0.0, 0.0]] * len(items)
    )
    report = icl_evaluate.evaluate_icl(None, tokenizer, DATA, ["pawsx"], [3], "en", ["zh"], seed=1, progress=False)
    task = get_task("pawsx")
    prefix = "".join(render(task, d, "en").demonstration + tokenizer.eos_token for d in demos)
    assert len(seen) == len(test_zh) and all(item.context.startswith(prefix) for item in seen)
    assert seen[0].context == prefix + render(task, test_zh[0], "en").context
    assert report["results"][0]["acc"] == sum(r["label"] == 0 for r in test_zh) / len(test_zh)


def test_connectors(tokenizer):
    assert connector_text(get_task("xnli"), tokenizer) == "\n\n"
    assert connector_text(get_task("xcopa"), tokenizer) == tokenizer.eos_token


def test_readers_check_their_input(tmp_path):
    bad = tmp_path / "xnli.tsv"
    bad.write_text("p\th\tentailment\np\th\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"xnli.tsv:2: field 'label' is 'maybe'"):
        read_xnli(bad)
    bad.write_text("p\th\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"xnli.tsv:1: expected 3 tab-separated columns, found 2"):
        read_xnli(bad)
    wino = tmp_path / "wino.jsonl"
    rows = [
        {"sentence": "A _ b.", "option1": "x", "option2": "y", "answer": "2"},
        {"sentence_part1": "A ", "sentence_part2": " b.", "option1": "x", "option2": "", "answer": 1},
    ]
    wino.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert read_xwinograd(wino) == [
        {"sentence_part1": "A ", "sentence_part2": " b.", "option1": "x", "option2": "y", "label": 1}
    ]
    wino.write_text(
        json.dumps({"sentence": "no blank", "option1": "x", "option2": "y", "answer": 1}) + "\n", encoding="utf-8"
    )
    with pytest.raises(DataFormatError, match="exactly one '_'"):
        read_xwinograd(wino)


def test_all_shipped_samples_read():
    for name in ("xnli", "pawsx", "xcopa", "xstorycloze", "xwinograd"):
        for lang in ("en", "zh"):
            assert len(read(name, lang, "dev")) == 8 and len(read(name, lang, "test")) == 12


def test_eval_icl_script_end_to_end(tmp_path, capsys):
    model_dir = build_tiny_model(tmp_path / "tiny", "llama")
    tokenizer_before = (model_dir / "tokenizer_config.json").read_text()
    output = tmp_path / "icl.json"
    report = eval_icl.main(
        [
            "--model",
            str(model_dir),
            "--tasks",
            "xnli,xwinograd",
            "--shots",
            "0,1",
            "--prompt-lang",
            "en",
            "--test-lang",
            "zh",
            "--data-dir",
            str(DATA),
            "--output-json",
            str(output),
            "--device",
            "cpu",
        ]
    )
    table = capsys.readouterr().out
    assert "xnli" in table and "en>zh" in table and "average" in table
    saved = json.loads(output.read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(report))
    assert [(r["task"], r["shots"], r["n"]) for r in saved["results"]] == [
        ("xnli", 0, 12),
        ("xnli", 1, 12),
        ("xwinograd", 0, 12),
        ("xwinograd", 1, 12),
    ]
    assert set(saved["averages"]["acc"]) == {"0-shot", "1-shot", "all"}
    assert all(
        r["counts"] == {"total": 12, "scored": 12, "missing": 0, "skipped": 0, "skipped_by_reason": {}}
        for r in saved["results"]
    )
    assert (model_dir / "tokenizer_config.json").read_text() == tokenizer_before


def test_results_count_the_test_records_the_reader_skipped(tmp_path, tokenizer):
    for split in ("dev", "test"):
        (tmp_path / "xnli" / "en").mkdir(parents=True, exist_ok=True)
        text = (DATA / "xnli" / "en" / f"{split}.tsv").read_text(encoding="utf-8")
        if split == "test":
            text += "\tA hypothesis.\tneutral\n"  # empty premise: skipped and counted
        (tmp_path / "xnli" / "en" / f"{split}.tsv").write_text(text, encoding="utf-8")
    report = icl_evaluate.evaluate_icl(
        make_model("llama"), tokenizer, tmp_path, ["xnli"], [0], "en", ["en"], progress=False
    )
    (result,) = report["results"]
    assert result["n"] == 12
    assert result["counts"] == {
        "total": 12,
        "scored": 12,
        "missing": 0,
        "skipped": 1,
        "skipped_by_reason": {"empty premise": 1},
    }
