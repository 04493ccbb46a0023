"""Alignment analysis: metrics against hand computation, per-layer states against early exit, the script end to end."""

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from scripts import analyze_alignment
from tests.support import REPO
from tests.support.models import SENTENCES_A, SENTENCES_B, make_model
from transformers_align.errors import UserError
from transformers_align.evaluation.alignment_analysis import (
    analysis_settings,
    layer_embeddings,
    layer_metrics,
    mining_scores,
    read_pairs,
)
from transformers_align.evaluation.alignment_analysis import analyze_alignment as analyze
from transformers_align.evaluation.encoding import SentenceEncoder
from transformers_align.losses import info_nce, pool
from transformers_align.modeling import AlignLlamaForCausalLM, layer_hidden_states
from transformers_align.tiny import build_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread is faster

PAIRS = REPO / "data_example" / "afp" / "en-zh.tsv"


def unit(v):
    norm = math.sqrt(sum(a * a for a in v))
    return [a / norm for a in v]


def test_metrics_match_a_hand_computation():
    x = [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]
    y = [[2.0, 0.2], [1.0, 0.3], [-1.0, 0.2]]
    xs, ys = [unit(v) for v in x], [unit(v) for v in y]
    cos = [[sum(a * b for a, b in zip(u, v)) for v in ys] for u in xs]
    # by hand: x0 -> y0, x1 -> y1 (right), x2 -> y1 (wrong); y0 -> x0 (right), y1 -> x0, y2 -> x1 (wrong)
    assert [max(range(3), key=lambda j: cos[i][j]) for i in range(3)] == [0, 1, 1]
    assert [max(range(3), key=lambda i: cos[i][j]) for j in range(3)] == [0, 0, 1]
    expected_random = sum(cos[i][j] for i in range(3) for j in range(3) if i != j) / 6
    expected_distance = sum(sum((a - b) ** 2 for a, b in zip(xs[i], ys[i])) for i in range(3)) / 3
    points = xs + ys
    kernel = [
        math.exp(-2 * sum((a - b) ** 2 for a, b in zip(points[i], points[j])))
        for i in range(6)
        for j in range(i + 1, 6)
    ]
    got = layer_metrics(torch.tensor(x), torch.tensor(y))
    assert got["retrieval_0_to_1"] == pytest.approx(2 / 3)
    assert got["retrieval_1_to_0"] == pytest.approx(1 / 3)
    assert got["cosine_true"] == pytest.approx(sum(cos[i][i] for i in range(3)) / 3)
    assert got["cosine_random"] == pytest.approx(expected_random)
    assert got["embedding_distance"] == pytest.approx(expected_distance)
    assert got["embedding_distance"] == pytest.approx(2 - 2 * got["cosine_true"])
    assert got["uniformity"] == pytest.approx(math.log(sum(kernel) / len(kernel)))


def test_mining_scores_are_scikit_learns_weighted_scores_as_mteb_computes_them():
    from sklearn.metrics import f1_score, precision_score, recall_score

    torch.manual_seed(3)
    for n in (2, 7, 40):
        predictions = torch.randint(0, n, (n,))  # collisions: several queries predict the same sentence
        predictions[: n // 2] = torch.arange(n // 2)  # and some right ones
        labels = list(range(n))
        got = mining_scores(predictions)
        for name, metric in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
            expected = metric(labels, predictions.tolist(), zero_division=0, average="weighted")
            assert got[name] == pytest.approx(expected, abs=1e-12), (n, name)


def test_mining_in_the_table_is_that_of_the_nearest_neighbours():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y = torch.tensor([[2.0, 0.2], [1.0, 0.3], [-1.0, 0.2]])
    got = layer_metrics(x, y)  # nearest 0->1: [0, 1, 1], 1->0: [0, 0, 1] (see the hand computation above)
    assert got["mining_f1_0_to_1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert got["mining_precision_0_to_1"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert got["mining_f1_1_to_0"] == pytest.approx((2 / 3 + 0 + 0) / 3)


def test_mining_f1_equals_mtebs_own_evaluator(tokenizer):
    """Run where mteb 2 is installed (it is not in the pinned environment; see docs/real_model_alignment.md)."""
    mteb = pytest.importorskip("mteb", minversion="2")
    from mteb._create_dataloaders import _create_dataloader_from_texts
    from mteb._evaluators.text.bitext_mining_evaluator import BitextMiningEvaluator
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining

    encoder = SentenceEncoder(make_model("llama"), tokenizer, layer=2)
    pairs = read_pairs(PAIRS)
    sides = [
        encoder.encode(_create_dataloader_from_texts([p[i] for p in pairs], batch_size=8), task_metadata=None)
        for i in (0, 1)
    ]
    ours = layer_metrics(torch.from_numpy(sides[0]), torch.from_numpy(sides[1]))
    for direction, (queries, corpus) in (("0_to_1", sides), ("1_to_0", sides[::-1])):
        neighbours = BitextMiningEvaluator._similarity_search(None, queries, corpus, encoder)
        theirs = AbsTaskBitextMining._compute_metrics(None, neighbours, [(i, i) for i in range(len(pairs))])
        assert ours[f"mining_f1_{direction}"] == pytest.approx(theirs["f1"], abs=1e-9), mteb.__version__
        assert ours[f"mining_precision_{direction}"] == pytest.approx(theirs["precision"], abs=1e-9)
        assert ours[f"retrieval_{direction}"] == pytest.approx(theirs["accuracy"], abs=1e-9)


def test_perfectly_aligned_pairs():
    x = torch.randn(5, 8)
    got = layer_metrics(x, 3 * x)
    assert got["retrieval_0_to_1"] == got["retrieval_1_to_0"] == 1.0
    assert got["cosine_true"] == pytest.approx(1.0) and got["embedding_distance"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        layer_metrics(x[:1], x[:1])


@pytest.mark.parametrize("model_type", ["llama", "bloom"])
def test_layers_are_block_outputs(model_type, tokenizer):
    model = make_model(model_type)
    settings = analysis_settings(model, pooling="mean", skip_first=0)
    layers = layer_embeddings(model, tokenizer, SENTENCES_A, settings, batch_size=3, progress=False)
    assert layers.shape == (4, len(SENTENCES_A), model.config.hidden_size)
    encoded = tokenizer(SENTENCES_A, padding=True, return_tensors="pt")
    stock = model(**encoded, output_hidden_states=True).hidden_states
    for layer in range(1, 4):  # blocks 1..N-1 = stock hidden_states; stock hidden_states[N] also has the final norm
        assert torch.allclose(layers[layer - 1], pool(stock[layer], encoded["attention_mask"], "mean"), atol=1e-5)
    last = layer_hidden_states(model, encoded["input_ids"], encoded["attention_mask"], 4)
    assert torch.allclose(layers[3], pool(last, encoded["attention_mask"], "mean"), atol=1e-5)


@pytest.mark.parametrize("pooling, skip_first", [("mean", 1), ("max", 2), ("last", 0)])
def test_analysis_sees_the_vectors_that_the_alignment_loss_compares(pooling, skip_first, tokenizer):
    model = make_model(
        "llama",
        AlignLlamaForCausalLM,
        additional_loss_layer=2,
        contrastive_pooling_type=pooling,
        contrastive_pooling_skip_first=skip_first,
        contrastive_loss_temperature=0.2,
    )
    settings = analysis_settings(model)  # what the model was set up to train with
    assert (settings.additional_loss_layer, settings.contrastive_pooling_type) == (2, pooling)
    side0, side1 = (
        layer_embeddings(model, tokenizer, side, settings, batch_size=3, progress=False)
        for side in (SENTENCES_A, SENTENCES_B)
    )
    a, b = (
        tokenizer(SENTENCES_A, padding=True, return_tensors="pt"),
        tokenizer(SENTENCES_B, padding=True, return_tensors="pt"),
    )
    with torch.no_grad():
        trained = model(
            input_ids_parallel_0=a.input_ids,
            attention_mask_parallel_0=a.attention_mask,
            input_ids_parallel_1=b.input_ids,
            attention_mask_parallel_1=b.attention_mask,
        ).alignment_loss
    torch.testing.assert_close(info_nce(side0[1], side1[1], 0.2), trained, atol=1e-5, rtol=1e-5)


def test_read_pairs_formats(tmp_path):
    jsonl = tmp_path / "pairs.jsonl"
    rows = [{"text_parallel_0": a, "text_parallel_1": b} for a, b in zip(SENTENCES_A, SENTENCES_B)]
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows + rows[:1]), encoding="utf-8")
    assert read_pairs(jsonl) == list(zip(SENTENCES_A, SENTENCES_B))  # the repeated pair is dropped
    afp = tmp_path / "afp.json"
    afp.write_text(
        "".join(
            json.dumps({"sent0": a, "sent1": b, "clm_text": "t", "clm_prompt_len": 0}) + "\n"
            for a, b in zip(SENTENCES_A, SENTENCES_B)
        ),
        encoding="utf-8",
    )
    assert read_pairs(afp)[1] == (SENTENCES_A[1], SENTENCES_B[1])
    assert len(read_pairs(PAIRS)) == 50
    jsonl.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="at least 2"):
        read_pairs(jsonl)


def test_analyze_alignment_script_end_to_end(tmp_path, capsys):
    model_dir = build_tiny_model(tmp_path / "tiny", "qwen2")
    report = analyze_alignment.main(
        [
            "--model",
            str(model_dir),
            "--pairs",
            str(PAIRS),
            "--max-pairs",
            "20",
            "--output-dir",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    table = capsys.readouterr().out
    assert "R@1 0>1" in table and "best mean retrieval at layer" in table
    saved = json.loads((tmp_path / "out" / "alignment_analysis.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(report)) and [r["layer"] for r in saved["layers"]] == [1, 2, 3, 4]
    assert saved["settings"]["pairs"] == 20
    png = tmp_path / "out" / "alignment_analysis.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved["settings"]["aligned_layer"] == 2 and saved["settings"]["skip_first"] == 1  # the defaults of a new run
    analyze_alignment.main(
        [
            "--model",
            str(model_dir),
            "--pairs",
            str(PAIRS),
            "--max-pairs",
            "20",
            "--pooling",
            "last",
            "--skip-bos",
            "--output-dir",
            str(tmp_path / "after"),
            "--baseline-json",
            str(tmp_path / "out" / "alignment_analysis.json"),
        ]
    )
    assert (tmp_path / "after" / "alignment_analysis.png").is_file()


def test_several_pairs_files_give_a_table_each_and_their_mean(tmp_path, capsys):
    model_dir = build_tiny_model(tmp_path / "tiny")
    rows = PAIRS.read_text(encoding="utf-8").splitlines()
    files = [tmp_path / "en-zh.tsv", tmp_path / "en-xx.test.tsv"]
    files[0].write_text("\n".join(rows[:8]) + "\n", encoding="utf-8")
    files[1].write_text("\n".join(rows[8:20]) + "\n", encoding="utf-8")
    argv = ["--model", str(model_dir), "--pairs", ",".join(map(str, files)), "--output-dir", str(tmp_path / "out")]
    report = analyze_alignment.main(argv)
    out = capsys.readouterr().out
    assert "== en-zh ==" in out and "== mean over 2 pairs files ==" in out and "  mean: " in out
    assert list(report["languages"]) == ["en-zh", "en-xx"]
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    single = [analyze(model, tokenizer, read_pairs(path), progress=False)["layers"] for path in files]
    for name, layers in zip(report["languages"], single):
        assert report["languages"][name]["layers"] == pytest.approx(layers)
    for index, row in enumerate(report["mean"]["layers"]):
        for metric in ("retrieval_0_to_1", "mining_f1_1_to_0", "uniformity"):
            assert row[metric] == pytest.approx((single[0][index][metric] + single[1][index][metric]) / 2)
    assert report["mean"]["settings"]["pairs"] == 20
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "alignment_analysis.json",
        "alignment_analysis.png",
        "alignment_analysis_en-zh.png",
        "alignment_analysis_en-xx.png",
    }
    same_name = tmp_path / "en-zh.dev.tsv"
    same_name.write_bytes(Path(files[0]).read_bytes())
    with pytest.raises(UserError, match="share a name"):
        analyze_alignment.main([*argv[:3], f"{files[0]},{same_name}", *argv[4:]])
