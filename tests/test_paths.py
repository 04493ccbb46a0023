"""No command writes over its own input: every writing command refuses, in one line and exit 2 before any work,
an output path that is one of its inputs (also through a symbolic link or ``..``) or a folder holding one.

The table runs each command as a user does (a subprocess) and checks that every file under the test folder
kept its bytes and modification time.
"""

import json
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO
from tests.support.processes import cpu_env
from transformers_align.paths import OutputOverInputError, refuse_output_over_inputs


def test_equal_paths_are_refused_through_links_and_dots(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("{}\n")
    (tmp_path / "link.jsonl").symlink_to(data)
    for output in (data, tmp_path / "link.jsonl", tmp_path / "sub" / ".." / "data.jsonl"):
        with pytest.raises(OutputOverInputError, match=r"^--out .* is the --data input"):
            refuse_output_over_inputs({"--out": output}, {"--data": str(data)})


def test_a_folder_holding_an_input_is_refused_and_a_file_beside_it_is_not(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train.json").write_text("[]")
    with pytest.raises(OutputOverInputError, match=r"--output_dir .* contains the --train_file input"):
        refuse_output_over_inputs({"--output_dir": tmp_path}, {"--train_file": [tmp_path / "run" / "train.json"]})
    refuse_output_over_inputs({"--output": tmp_path / "run" / "other.json"}, {"--input": tmp_path / "run"})
    refuse_output_over_inputs({"--output": tmp_path / "run" / "new"}, {"--input": tmp_path / "run" / "train.json"})


def test_absent_inputs_and_outputs_are_not_compared(tmp_path):
    # A hub id is not a file that could be overwritten; an optional output not given writes nothing.
    refuse_output_over_inputs({"--output_dir": tmp_path}, {"--model_name_or_path": "meta-llama/Llama-3-8B"})
    refuse_output_over_inputs({"--output_json": None}, {"--data": tmp_path})


@pytest.fixture
def inputs(tmp_path, tiny_model_dir):
    """The inputs a user has: MASSIVE gold data and predictions, a model, adapters, training and test files."""
    root = tmp_path / "user"
    shutil.copytree(tiny_model_dir, root / "model")
    shutil.copytree(REPO / "data_example/massive", root / "massive")
    shutil.copy(root / "massive" / "en-US.jsonl", root / "gold.jsonl")
    (root / "preds.jsonl").write_text(json.dumps({"id": "1", "prediction": "time : nine pm"}) + "\n")
    for name in ("task", "ref_fr", "ref_en"):
        (root / name / "checkpoint-1").mkdir(parents=True)
        (root / name / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
        (root / name / "checkpoint-1" / "trainer_state.json").write_text("{}")
    shutil.copy(REPO / "data_example/train_baseline_with_alignment.json", root / "train.json")
    (root / "run").mkdir()
    shutil.copy(root / "train.json", root / "run" / "train.json")
    shutil.copy(REPO / "data_example/adamergex/mgsm_en.tsv", root / "mgsm.tsv")
    shutil.copy(REPO / "data_example/pairs.tsv", root / "pairs.tsv")
    shutil.copy(root / "pairs.tsv", root / "task" / "alignment_report.json")  # pairs where the report goes
    shutil.copy(REPO / "data_example/afp/AFP.en_zh.train.json", root / "afp.json")
    shutil.copytree(REPO / "data_example/icl", root / "icl")
    (root / "raw.txt").write_text("one two three four five six seven eight\n")
    (root / "wmt.de").write_text("Hallo Welt\n")
    (root / "wmt.en").write_text("Hello world\n")
    (root / "wmt.jsonl").write_text(json.dumps({"id": 0, "prediction": "Hello world"}) + "\n")
    (root / "data_link.jsonl").symlink_to(root / "gold.jsonl")
    return root


MODEL = ["--model_name_or_path", "{model}"]
# id, command (``{...}`` are files of the ``inputs`` fixture), the output flag and the input flag the line names.
CASES = [
    ("eval_massive-json-is-predictions", ["eval_massive", "--pred_slots_file", "{preds.jsonl}", "--data_file",
     "{gold.jsonl}", "--output_json", "{preds.jsonl}"], "--output_json", "--pred_slots_file"),
    ("eval_massive-json-is-gold", ["eval_massive", "--pred_slots_file", "{preds.jsonl}", "--lang", "en",
     "--data_dir", "{massive}", "--output_json", "{massive/en-US.jsonl}"], "--output_json", "--data_dir"),
    ("run_inference_massive-output-is-data", ["run_inference_massive", *MODEL, "--data_file", "{gold.jsonl}",
     "--output_file", "{gold.jsonl}"], "--output_file", "--data_file"),
    ("run_inference_massive-output-links-to-data", ["run_inference_massive", *MODEL, "--data_file", "{gold.jsonl}",
     "--output_file", "{data_link.jsonl}"], "--output_file", "--data_file"),
    ("run_inference_massive-output-is-adapter", ["run_inference_massive", *MODEL, "--peft_model_id", "{task}",
     "--data_file", "{gold.jsonl}", "--output_file", "{task}"], "--output_file", "--peft_model_id"),
    ("merge_adapters-out-is-task", ["merge_adapters", "--task", "{task}", "--ref_target", "{ref_fr}",
     "--ref_source", "{ref_en}", "--out", "{task}", "--overwrite"], "--out", "--task"),
    ("merge_adapters-out-holds-ref", ["merge_adapters", "--task", "{task}", "--ref_target", "{ref_fr}",
     "--ref_source", "{ref_en}", "--out", "{}", "--overwrite"], "--out", "--task"),
    ("run_clm_lora-output-holds-train-file", ["run_clm_lora", *MODEL, "--train_file", "{run/train.json}",
     "--output_dir", "{run}", "--overwrite_output_dir", "True", "--do_train"], "--output_dir", "--train_file"),
    ("run_clm_lora-output-is-model", ["run_clm_lora", "--model_name_or_path", "{model}", "--train_file",
     "{train.json}", "--output_dir", "{model}", "--overwrite_output_dir", "True", "--do_train"], "--output_dir",
     "--model_name_or_path"),
    ("run_clm_lora-output-is-lora-start", ["run_clm_lora", *MODEL, "--train_file", "{train.json}", "--use_lora",
     "True", "--load_lora_from", "{task}", "--output_dir", "{task}", "--resume_from_checkpoint", "auto",
     "--do_train"], "--output_dir", "--load_lora_from"),
    ("eval_mgsm-json-is-data", ["eval_mgsm", *MODEL, "--data", "{mgsm.tsv}", "--output_json", "{mgsm.tsv}"],
     "--output_json", "--data"),
    ("eval_mgsm-predictions-is-data", ["eval_mgsm", *MODEL, "--data", "{mgsm.tsv}", "--predictions",
     "{mgsm.tsv}"], "--predictions", "--data"),
    ("eval_icl-json-is-test-set", ["eval_icl", *MODEL, "--tasks", "xnli", "--test_lang", "zh", "--data_dir",
     "{icl}", "--output_json", "{icl/xnli/zh/test.tsv}"], "--output_json", "--data_dir"),
    ("analyze_alignment-output-holds-pairs", ["analyze_alignment", *MODEL, "--pairs", "{pairs.tsv}",
     "--output_dir", "{}"], "--output_dir", "--pairs"),
    ("report_alignment_run-report-is-pairs", ["report_alignment_run", *MODEL, "--adapter", "{task}", "--pairs",
     "{task/alignment_report.json}"], "--adapter", "--pairs"),
    ("construct_dataset_lm-output-is-input", ["construct_dataset_lm", "--input", "{raw.txt}", "--language", "en",
     "--output", "{raw.txt}", "--chunk_size", "2"], "--output", "--input"),
    ("build_massive_training_data-output-is-input", ["build_massive_training_data", "--massive_files",
     "{gold.jsonl}", "--output", "{gold.jsonl}"], "--output", "--massive_files"),
    ("generate_sup_data-merge-output-is-input", ["generate_sup_data", "--mode", "merge", "--inputs", "{afp.json}",
     "--output_file", "{afp.json}"], "--output_file", "--inputs"),
    ("export_lm_eval_tasks-output-is-data", ["export_lm_eval_tasks", "--data_dir", "{icl}", "--output_dir",
     "{icl}"], "--output_dir", "--data_dir"),
    ("wmt-translations-are-references", ["run_inference_eval_wmt23", *MODEL, "--source_file", "{wmt.de}",
     "--reference_file", "{wmt.en}", "--output_file", "{wmt.en}"], "--output_file", "--reference_file"),
    ("wmt-metrics-are-scored-translations", ["run_inference_eval_wmt23", "--evaluation_only", "--source_file",
     "{wmt.de}", "--reference_file", "{wmt.en}", "--output_file", "{wmt.jsonl}", "--metrics_file", "{wmt.jsonl}"],
     "--metrics_file", "--output_file"),
]  # fmt: skip


def snapshot(folder):
    """Every file under ``folder``: its bytes and modification time."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def fill(argument, root):
    """``{name}`` as the path of the fixture's file ``name`` (``{}``: the fixture's folder)."""
    if argument.startswith("{") and argument.endswith("}"):
        return str(root / argument[1:-1]) if len(argument) > 2 else str(root)
    return argument


@pytest.mark.parametrize("script, arguments, output_flag, input_flag", [(c[1][0], c[1][1:], c[2], c[3]) for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_an_output_over_an_input_is_refused_in_one_line(inputs, script, arguments, output_flag, input_flag):
    before = snapshot(inputs)
    argv = [fill(argument, inputs) for argument in arguments]
    result = subprocess.run(
        [sys.executable, "-m", f"scripts.{script}", *argv],
        cwd=REPO,
        env=cpu_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert output_flag in lines[-1] and input_flag in lines[-1], lines[-1]
    assert snapshot(inputs) == before
