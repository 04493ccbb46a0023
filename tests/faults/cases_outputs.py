"""Fault cases: an output path that is one of the command's inputs, or a folder holding one (transformers_align.paths).

Every case runs in the same user folder (``user_files``): MASSIVE gold data and predictions, a model, adapters with
checkpoints, training, test and pair files. The line must name the output flag, then the input flag."""

import json
import shutil
from pathlib import Path

from tests.faults.harness import FaultCase, python_module
from tests.support import REPO


def user_files(tmp: Path, tiny: Path) -> None:
    shutil.copytree(tiny, tmp / "model")
    shutil.copytree(REPO / "data_example/massive", tmp / "massive")
    shutil.copy(tmp / "massive" / "en-US.jsonl", tmp / "gold.jsonl")
    (tmp / "preds.jsonl").write_text(json.dumps({"id": "1", "prediction": "time : nine pm"}) + "\n")
    for name in ("task", "ref_fr", "ref_en"):
        (tmp / name / "checkpoint-1").mkdir(parents=True)
        (tmp / name / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
        (tmp / name / "checkpoint-1" / "trainer_state.json").write_text("{}")
    shutil.copy(REPO / "data_example/train_baseline_with_alignment.json", tmp / "train.json")
    (tmp / "run").mkdir()
    shutil.copy(tmp / "train.json", tmp / "run" / "train.json")
    shutil.copy(REPO / "data_example/adamergex/mgsm_en.tsv", tmp / "mgsm.tsv")
    shutil.copy(REPO / "data_example/pairs.tsv", tmp / "pairs.tsv")
    shutil.copy(tmp / "pairs.tsv", tmp / "task" / "alignment_report.json")  # pairs where the report goes
    shutil.copy(REPO / "data_example/afp/AFP.en_zh.train.json", tmp / "afp.json")
    shutil.copytree(REPO / "data_example/icl", tmp / "icl")
    (tmp / "raw.txt").write_text("one two three four five six seven eight\n")
    (tmp / "wmt.de").write_text("Hallo Welt\n")
    (tmp / "wmt.en").write_text("Hello world\n")
    (tmp / "wmt.jsonl").write_text(json.dumps({"id": 0, "prediction": "Hello world"}) + "\n")
    (tmp / "data_link.jsonl").symlink_to(tmp / "gold.jsonl")


MODEL = ("--model_name_or_path", "{tmp}/model")
MERGE = ("--task", "{tmp}/task", "--ref_target", "{tmp}/ref_fr", "--ref_source", "{tmp}/ref_en")


def _case(name, area, script, arguments, output_flag, input_flag):
    return FaultCase(
        name=name,
        area=area,
        command=python_module(script, *arguments),
        cause=f"{output_flag} .*{input_flag}",
        setup=user_files,
    )


CASES = [
    _case("eval_massive --output_json is the predictions", "evaluation", "eval_massive",
          ["--pred_slots_file", "{tmp}/preds.jsonl", "--data_file", "{tmp}/gold.jsonl", "--output_json",
           "{tmp}/preds.jsonl"], "--output_json", "--pred_slots_file"),
    _case("eval_massive --output_json is the gold file", "evaluation", "eval_massive",
          ["--pred_slots_file", "{tmp}/preds.jsonl", "--lang", "en", "--data_dir", "{tmp}/massive", "--output_json",
           "{tmp}/massive/en-US.jsonl"], "--output_json", "--data_dir"),
    _case("run_inference_massive --output_file is the data", "evaluation", "run_inference_massive",
          [*MODEL, "--data_file", "{tmp}/gold.jsonl", "--output_file", "{tmp}/gold.jsonl"],
          "--output_file", "--data_file"),
    _case("run_inference_massive --output_file links to the data", "evaluation", "run_inference_massive",
          [*MODEL, "--data_file", "{tmp}/gold.jsonl", "--output_file", "{tmp}/data_link.jsonl"],
          "--output_file", "--data_file"),
    _case("run_inference_massive --output_file is the adapter", "evaluation", "run_inference_massive",
          [*MODEL, "--peft_model_id", "{tmp}/task", "--data_file", "{tmp}/gold.jsonl", "--output_file",
           "{tmp}/task"], "--output_file", "--peft_model_id"),
    _case("merge_adapters --out is the task adapter", "merging", "merge_adapters",
          [*MERGE, "--out", "{tmp}/task", "--overwrite"], "--out", "--task"),
    _case("merge_adapters --out holds the adapters", "merging", "merge_adapters",
          [*MERGE, "--out", "{tmp}", "--overwrite"], "--out", "--task"),
    _case("run_clm_lora --output_dir holds the train file", "runs", "run_clm_lora",
          [*MODEL, "--train_file", "{tmp}/run/train.json", "--output_dir", "{tmp}/run", "--overwrite_output_dir",
           "True", "--do_train"], "--output_dir", "--train_file"),
    _case("run_clm_lora --output_dir is the model", "runs", "run_clm_lora",
          [*MODEL, "--train_file", "{tmp}/train.json", "--output_dir", "{tmp}/model", "--overwrite_output_dir",
           "True", "--do_train"], "--output_dir", "--model_name_or_path"),
    _case("run_clm_lora --output_dir is the LoRA it starts from", "resumes", "run_clm_lora",
          [*MODEL, "--train_file", "{tmp}/train.json", "--use_lora", "True", "--load_lora_from", "{tmp}/task",
           "--output_dir", "{tmp}/task", "--resume_from_checkpoint", "auto", "--do_train"],
          "--output_dir", "--load_lora_from"),
    _case("eval_mgsm --output_json is the data", "evaluation", "eval_mgsm",
          [*MODEL, "--data", "{tmp}/mgsm.tsv", "--output_json", "{tmp}/mgsm.tsv"], "--output_json", "--data"),
    _case("eval_mgsm --predictions is the data", "evaluation", "eval_mgsm",
          [*MODEL, "--data", "{tmp}/mgsm.tsv", "--predictions", "{tmp}/mgsm.tsv"], "--predictions", "--data"),
    _case("eval_icl --output_json is a test set", "evaluation", "eval_icl",
          [*MODEL, "--tasks", "xnli", "--test_lang", "zh", "--data_dir", "{tmp}/icl", "--output_json",
           "{tmp}/icl/xnli/zh/test.tsv"], "--output_json", "--data_dir"),
    _case("analyze_alignment --output_dir holds the pairs", "evaluation", "analyze_alignment",
          [*MODEL, "--pairs", "{tmp}/pairs.tsv", "--output_dir", "{tmp}"], "--output_dir", "--pairs"),
    _case("report_alignment_run report is the pairs", "evaluation", "report_alignment_run",
          [*MODEL, "--adapter", "{tmp}/task", "--pairs", "{tmp}/task/alignment_report.json"], "--adapter", "--pairs"),
    _case("construct_dataset_lm --output is the input", "data", "construct_dataset_lm",
          ["--input", "{tmp}/raw.txt", "--language", "en", "--output", "{tmp}/raw.txt", "--chunk_size", "2"],
          "--output", "--input"),
    _case("build_massive_training_data --output is the input", "data", "build_massive_training_data",
          ["--massive_files", "{tmp}/gold.jsonl", "--output", "{tmp}/gold.jsonl"], "--output", "--massive_files"),
    _case("generate_sup_data merge --output_file is an input", "data", "generate_sup_data",
          ["--mode", "merge", "--inputs", "{tmp}/afp.json", "--output_file", "{tmp}/afp.json"],
          "--output_file", "--inputs"),
    _case("export_lm_eval_tasks --output_dir is the data", "evaluation", "export_lm_eval_tasks",
          ["--data_dir", "{tmp}/icl", "--output_dir", "{tmp}/icl"], "--output_dir", "--data_dir"),
    _case("WMT translations over the references", "evaluation", "run_inference_eval_wmt23",
          [*MODEL, "--source_file", "{tmp}/wmt.de", "--reference_file", "{tmp}/wmt.en", "--output_file",
           "{tmp}/wmt.en"], "--output_file", "--reference_file"),
    _case("WMT metrics over the scored translations", "evaluation", "run_inference_eval_wmt23",
          ["--evaluation_only", "--source_file", "{tmp}/wmt.de", "--reference_file", "{tmp}/wmt.en", "--output_file",
           "{tmp}/wmt.jsonl", "--metrics_file", "{tmp}/wmt.jsonl"], "--metrics_file", "--output_file"),
]  # fmt: skip
