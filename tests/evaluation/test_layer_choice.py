"""The layer chosen from data: norm ratios against stock hidden states, the rule on constructed sweeps, the pass
against the analysis' own vectors, the script's last line, and SmolLM2's attention sink."""

import math
import subprocess

import pytest
import torch

from scripts import choose_layer
from tests.support import REPO
from tests.support.models import SENTENCES_A, SENTENCES_B, make_model
from transformers_align.evaluation.alignment_analysis import analysis_settings, layer_embeddings, read_pairs
from transformers_align.evaluation.layer_choice import (
    SINK_RATIO,
    LayerSweep,
    leading_norm_ratios,
    recommend,
    sink_count,
    sweep_layers,
)
from transformers_align.modeling import AlignmentSettings
from transformers_align.tiny import build_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PAIRS = REPO / "data_example" / "afp" / "en-zh.tsv"


def test_norm_ratios_against_a_hand_computation():
    hidden = [torch.zeros(2, 4, 3)]
    hidden[0][0, :, 0] = torch.tensor([30.0, 2.0, 1.0, 3.0])  # sentence 0: 4 real tokens, median norm 2.5
    hidden[0][1, :, 1] = torch.tensor([4.0, 8.0, 2.0, 99.0])  # sentence 1: 3 real tokens (the 4th is padding)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]).bool()
    got = leading_norm_ratios(hidden, mask, 2)
    # torch's median of an even count is the lower middle value: 2 for [1, 2, 3, 30]; 4 for [2, 4, 8]
    torch.testing.assert_close(got[0], torch.tensor([[30 / 2, 2 / 2], [4 / 4, 8 / 4]]))


def test_sink_count_counts_leading_sinks_in_a_row():
    assert sink_count([116.0, 1.2]) == 1
    assert sink_count([50.0, 20.0]) == 2
    assert sink_count([1.0, 50.0]) == 0  # a later large token is not a leading sink
    assert sink_count([SINK_RATIO, 1.0]) == 0 and sink_count([math.nan, 99.0]) == 0


def constructed_sweep():
    """4 layers, 6 pairs: layer 3 retrieves perfectly once its first token (a sink) is left out, layer 2 half."""
    torch.manual_seed(0)
    n, dim = 6, 8
    truth = torch.randn(n, dim)
    noise = torch.randn(4, n, dim)
    side0 = truth.expand(4, n, dim).clone()
    side1 = side0 + 5 * noise  # layers 1 and 4: unrelated
    side1[2] = truth + 0.01 * noise[2]
    side1[1] = truth[[0, 1, 2, 4, 5, 3]]  # the last three matched to each other's translations
    with_sink = (side0 + 100.0, side1 - 100.0)  # skip 0 at every layer: the sink makes the two sides disagree
    ratios = torch.tensor([[1.0, 1.0], [1.0, 1.0], [116.0, 1.1], [1.0, 1.0]])
    return LayerSweep(
        vectors={0: with_sink, 1: (side0, side1), 2: (side0, side1)}, norm_ratios=ratios, seconds=3.0, pairs=n
    )


def test_the_rule_picks_the_best_retrieving_layer_with_its_sink_left_out():
    settings = AlignmentSettings(additional_loss_layer=2, contrastive_pooling_skip_first=1)
    choice = recommend(constructed_sweep(), settings)
    assert (choice["layer"], choice["skip_first"], choice["retrieval"]) == (3, 1, 1.0)
    assert choice["current_retrieval"] == pytest.approx(0.5)
    assert [row["skip_first"] for row in choice["layers"]] == [0, 0, 1, 0]
    assert "layer 3: best mean top-1 retrieval 1.00 on 6 pairs (layer 2 with skip_first 1: 0.50)" in choice["reason"]
    assert "116x the median token norm at layer 3" in choice["reason"] and "took 3.0 s" in choice["reason"]
    fixed = recommend(constructed_sweep(), settings, fixed_skip_first=0)  # the sink left in everywhere
    assert fixed["skip_first"] == 0 and "kept as given" in fixed["reason"]


def test_the_pass_gives_the_analysis_vectors_for_every_skip_first(tokenizer):
    model = make_model("llama")
    pairs = list(zip(SENTENCES_A, SENTENCES_B))
    settings = analysis_settings(model)
    sweep = sweep_layers(model, tokenizer, pairs, settings, [3], batch_size=3, progress=False)
    assert sorted(sweep.vectors) == [0, 1, 2, 3] and sweep.pairs == 4 and sweep.seconds > 0
    for skip, (side0, side1) in sweep.vectors.items():
        skipped = analysis_settings(model, skip_first=skip)
        for side, texts in ((side0, SENTENCES_A), (side1, SENTENCES_B)):
            expected = layer_embeddings(model, tokenizer, texts, skipped, batch_size=2, progress=False)
            torch.testing.assert_close(side, expected, atol=1e-5, rtol=1e-5)
    # The ratios from the stock hidden states, one sentence at a time.
    ids = torch.tensor([tokenizer(SENTENCES_A[0]).input_ids])
    with torch.no_grad():
        stock = model(input_ids=ids, output_hidden_states=True).hidden_states[2][0].norm(dim=-1)
    ratios = torch.stack(
        [leading_norm_ratios([h], torch.ones(1, h.shape[1], dtype=torch.bool), 2)[0] for h in [stock[None, :, None]]]
    )
    assert ratios[0, 0, 0].item() == pytest.approx((stock[0] / stock.median()).item(), rel=1e-5)


def test_choose_layer_prints_the_layer_last(tmp_path, capsys):
    model_dir = build_tiny_model(tmp_path / "tiny")
    choice = choose_layer.main(["--model", str(model_dir), "--pairs", str(PAIRS), "--held_out", "12"])
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == str(choice["layer"]) and choice["pairs"] == 12
    assert err.splitlines()[-1].startswith("choose_layer: layer ")
    fixed = choose_layer.main(
        ["--model", str(model_dir), "--pairs", str(PAIRS), "--held_out", "12", "--skip_first", "2"]
    )
    assert fixed["skip_first"] == 2 and {row["skip_first"] for row in fixed["layers"]} == {2}


def test_choose_layer_refuses_before_loading_a_model(tmp_path):
    for argv, message in (
        (["--pairs", str(PAIRS), "--held_out", "1"], "--held_out 1"),
        (["--pairs", str(tmp_path / "none.tsv")], "none.tsv"),
    ):
        result = subprocess.run(
            ["python", "-m", "scripts.choose_layer", "--model", str(tmp_path / "no-model"), *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_smollm2_has_a_first_token_sink_that_the_choice_leaves_out(smollm2):
    model, tokenizer = smollm2
    pairs = read_pairs(REPO / "data_example" / "afp" / "en-zh.tsv")[:6]
    settings = analysis_settings(model)
    choice = recommend(sweep_layers(model, tokenizer, pairs, settings, progress=False), settings)
    middle = choice["layers"][15]
    assert middle["leading_norm_ratios"][0] > 10 * SINK_RATIO and middle["skip_first"] == 1
    assert choice["skip_first"] == 1
