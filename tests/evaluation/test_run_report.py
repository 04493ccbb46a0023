"""The end-of-run report: settings from the run record, retrieval before/after against the analysis, JSON written."""

import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from scripts import report_alignment_run
from tests.support import REPO
from tests.support.models import save_random_adapter
from transformers_align.errors import UserError
from transformers_align.evaluation.alignment_analysis import analysis_settings, analyze_alignment, read_pairs
from transformers_align.evaluation.run_report import REPORT_FILE, format_run_report

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread is faster

PAIRS = REPO / "data_example" / "afp" / "en-zh.tsv"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny base model and a (random, non-zero) LoRA adapter with the run record training writes next to it."""
    record = {"additional_loss_layer": 3, "contrastive_pooling_type": "max", "contrastive_pooling_skip_first": 2}
    return save_random_adapter(tmp_path_factory.mktemp("report"), record)


def test_report_uses_the_trained_settings_and_matches_the_analysis(trained, capsys):
    base, adapter = trained
    report = report_alignment_run.main(
        [
            "--model_name_or_path",
            str(base),
            "--adapter",
            str(adapter),
            "--pairs",
            str(PAIRS),
            "--max-new-tokens",
            "4",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert "EN->ZH" in out and "chance 0.020" in out and "MASSIVE test slot filling" in out
    assert (report["layer"], report["pooling"], report["skip_first"]) == (3, "max", 2)
    assert report["pairs"] == 50 and report["chance"] == pytest.approx(1 / 50)
    assert set(report["task"]["scores"]) == {"en", "fr"} and report["task"]["scores"]["fr"]["examples"] == 24
    assert json.loads((adapter / REPORT_FILE).read_text()) == json.loads(json.dumps(report))
    # Before = the base model, after = base + adapter, both as the full per-layer analysis computes them at layer 3.
    from peft import PeftModel

    model, tokenizer = AutoModelForCausalLM.from_pretrained(base).eval(), AutoTokenizer.from_pretrained(base)
    pairs = read_pairs(PAIRS)
    settings = analysis_settings(model, adapter)
    before = analyze_alignment(model, tokenizer, pairs, settings, progress=False)["layers"][2]
    after = analyze_alignment(
        PeftModel.from_pretrained(model, adapter).eval(), tokenizer, pairs, settings, progress=False
    )["layers"][2]
    for name in ("retrieval_0_to_1", "cosine_true", "cosine_random"):
        assert report["retrieval_before"][name] == pytest.approx(before[name], abs=1e-6)
        assert report["retrieval_after"][name] == pytest.approx(after[name], abs=1e-6)
    assert report["retrieval_after"]["cosine_true"] != pytest.approx(
        report["retrieval_before"]["cosine_true"], abs=1e-4
    )


def test_a_missing_adapter_is_one_line_before_any_model_loads(tmp_path):
    with pytest.raises(UserError, match="no adapter_config.json"):
        report_alignment_run.main(
            ["--model_name_or_path", str(tmp_path), "--adapter", str(tmp_path), "--pairs", str(PAIRS)]
        )


def test_a_task_only_run_is_reported_the_same_way_with_its_own_last_line(trained, tmp_path):
    # The baseline's report: the same retrieval and task figures; its last line does not judge an alignment
    # that was never trained.
    import shutil

    base, adapter = trained
    baseline = tmp_path / "baseline"
    shutil.copytree(adapter, baseline)
    record = json.loads((baseline / "alignment_run_args.json").read_text())
    (baseline / "alignment_run_args.json").write_text(json.dumps(dict(record, training_mode="task")))
    argv = ["--model_name_or_path", str(base), "--pairs", str(PAIRS), "--max-new-tokens", "4", "--device", "cpu"]
    aligned = report_alignment_run.main([*argv, "--adapter", str(adapter)])
    task_only = report_alignment_run.main([*argv, "--adapter", str(baseline)])
    assert task_only["training_mode"] == "task" and aligned["training_mode"] is None
    for same in ("layer", "pooling", "retrieval_before", "retrieval_after"):
        assert task_only[same] == aligned[same]
    assert task_only["task"]["scores"] == aligned["task"]["scores"]
    lines = format_run_report(task_only).splitlines()
    assert lines[-1].startswith("Task-only run (no alignment objective), retrieval at layer 3: EN->ZH top-1")
    assert format_run_report(aligned).splitlines()[:-1] == lines[:-1]
