"""Alignment on a real checkpoint (SmolLM2-135M-Instruct, real EN-FR pairs): the default pooling is not degenerate,
the reference pooling is (and says so), and a few alignment steps bring InfoNCE below ln(batch)."""

import json
import logging
import math
import subprocess

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.support import REPO
from tests.support.processes import cpu_env
from transformers_align.data.gettext_pairs import gettext_pairs
from transformers_align.evaluation.alignment_analysis import analysis_settings, analyze_alignment
from transformers_align.losses import pooled_cosines
from transformers_align.modeling import AlignmentSettings, aligned_representation, num_blocks, patch_model
from transformers_align.modeling.gguf_checkpoint import CACHE_NAME

pytestmark = [
    pytest.mark.slow,  # end to end: a script, torchrun or a real model
    pytest.mark.usefixtures("one_torch_thread"),
]

BATCH = 8


@pytest.fixture(scope="module")
def pairs():
    """Real EN-FR pairs from the django/sphinx catalogs, short ones first (fast to encode)."""
    _, test = gettext_pairs(["fr"], test_size=60, seed=0)["fr"]
    return sorted(test, key=lambda pair: len(pair[0]) + len(pair[1]))[: 2 * BATCH]


def encode(tokenizer, sentences):
    batch = tokenizer(list(sentences), padding=True, return_tensors="pt")
    return batch.input_ids, batch.attention_mask


def cosines(model, tokenizer, pairs, settings):
    with torch.no_grad():
        sides = [aligned_representation(model, *encode(tokenizer, [p[i] for p in pairs]), settings) for i in (0, 1)]
    return pooled_cosines(*sides)


def test_default_pooling_keeps_true_and_random_pairs_apart_and_the_reference_does_not(smollm2, pairs):
    model, tokenizer = smollm2
    default = AlignmentSettings().resolved(num_blocks(model))
    assert default.additional_loss_layer == 15  # the middle of 30 blocks
    true, random = cosines(model, tokenizer, pairs, default)
    assert true - random > 0.02 and random < 0.95, (true, random)
    assert default.degeneracy_warning(true, random) is None
    # mid-align's pooling (the first token, an attention sink here, included): every sentence points the same way.
    reference = AlignmentSettings(contrastive_pooling_skip_first=0).resolved(num_blocks(model))
    true, random = cosines(model, tokenizer, pairs, reference)
    assert random > 0.99 and true - random < 0.005, (true, random)
    assert "contrastive_pooling_skip_first=1" in reference.degeneracy_warning(true, random)


def test_analysis_warns_about_a_degenerate_pooling(smollm2, pairs, caplog):
    model, tokenizer = smollm2
    with caplog.at_level(logging.WARNING):
        report = analyze_alignment(model, tokenizer, pairs[:4], analysis_settings(model, skip_first=0), progress=False)
    assert report["warning"] and "massive activation on the first token" in report["warning"]
    assert caplog.text.count("degenerate sentence representation") == 1
    assert analyze_alignment(model, tokenizer, pairs[:4], analysis_settings(model), progress=False)["warning"] is None


def test_a_few_alignment_steps_bring_infonce_below_ln_batch(smollm2_dir, pairs, caplog):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    patch_model(model, contrastive_loss_temperature=0.05)
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    aligned = model.get_base_model()
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    side0, side1 = encode(tokenizer, [p[0] for p in pairs[:BATCH]]), encode(tokenizer, [p[1] for p in pairs[:BATCH]])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    with caplog.at_level(logging.WARNING):
        for _ in range(6):
            loss = aligned.compute_alignment_loss(*side0, *side1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert abs(losses[0] - math.log(BATCH)) < 0.5  # starts near chance
    assert losses[-1] < math.log(BATCH) - 1.0, losses
    assert "degenerate" not in caplog.text


def test_training_warns_once_when_the_pooling_is_degenerate(smollm2_dir, pairs, caplog):
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    patch_model(model, contrastive_pooling_skip_first=0)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    side0, side1 = encode(tokenizer, [p[0] for p in pairs[:4]]), encode(tokenizer, [p[1] for p in pairs[:4]])
    with caplog.at_level(logging.WARNING), torch.no_grad():
        for _ in range(2):
            model.compute_alignment_loss(*side0, *side1)
    assert caplog.text.count("degenerate sentence representation at layer 15") == 1
    assert "contrastive_pooling_skip_first=1" in caplog.text


def test_the_default_run_trains_smollm2_on_real_pairs_and_reports(smollm2_dir, tmp_path):
    # `bash scripts/train_with_alignment.sh` with no variables, as a user runs it, cut to 5 optimizer steps: the
    # converted SmolLM2 (its cache pointed at this session's conversion), real EN-FR pairs, the embedded MASSIVE rows.
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / CACHE_NAME).symlink_to(smollm2_dir)
    out, data = tmp_path / "out", tmp_path / "data"
    env = cpu_env(TRANSFORMERS_ALIGN_CACHE=str(tmp_path / "cache"), OUTDIR=str(out), DATA_DIR=str(data))
    result = subprocess.run(
        ["bash", "scripts/train_with_alignment.sh", "--max_steps", "5", "--logging_steps", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # One task step, then two alignment steps of 32 pairs, at the middle block, without LoRA dropout.
    logs = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert [("task_loss" in h, "alignment_loss" in h) for h in logs] == [(True, False)] + [(False, True)] * 2 + [
        (True, False),
        (False, True),
    ]
    run = json.loads((out / "alignment_run_args.json").read_text())
    assert (
        run["training"]["alignment_steps_per_task_step"] == 2
        and run["training"]["per_device_alignment_batch_size"] == 32
    )
    assert json.loads((out / "adapter_config.json").read_text())["lora_dropout"] == 0.0

    # The report's "before" figure, recomputed from the stock model's hidden states: block 15, mean over the
    # sentence without its first token, top-1 by cosine.
    report = json.loads((out / "alignment_report.json").read_text())
    assert (report["layer"], report["pairs"], report["chance"], report["languages"]) == (15, 100, 0.01, ["EN", "FR"])
    test_pairs = [line.split("\t") for line in (data / "en-fr.test.tsv").read_text(encoding="utf-8").splitlines()]
    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(smollm2_dir).eval(),
        AutoTokenizer.from_pretrained(smollm2_dir),
    )
    vectors = []
    for side in (0, 1):
        pooled = []
        for pair in test_pairs:
            ids = tokenizer(pair[side], return_tensors="pt").input_ids
            with torch.no_grad():
                pooled.append(model(ids, output_hidden_states=True).hidden_states[15][0, 1:].mean(0))
        vectors.append(torch.nn.functional.normalize(torch.stack(pooled), dim=-1))
    top1 = (vectors[0] @ vectors[1].T).argmax(1)
    expected = (top1 == torch.arange(len(test_pairs))).float().mean().item()
    assert abs(report["retrieval_before"]["retrieval_0_to_1"] - expected) < 1e-6
    assert f"top-1 retrieval EN->FR: {expected:.2f} before" in result.stdout
    assert set(report["task"]["scores"]) == {"en", "fr"} and report["task"]["scores"]["en"]["examples"] == 24
    after = report["retrieval_after"]["retrieval_0_to_1"]
    verdict = "reached" if after >= 0.9 else "did NOT reach"
    assert result.stdout.strip().splitlines()[-1].startswith(f"Alignment {verdict} the 90% held-out retrieval mark")
