"""One CLI convention: every script parses dataclasses, --model_name_or_path everywhere, and
every earlier flag spelling still parses to the same arguments."""

import argparse
import ast
import importlib
import re

import pytest

from scripts import (
    analyze_alignment,
    build_massive_training_data,
    construct_dataset_lm,
    eval_icl,
    eval_massive,
    eval_mgsm,
    export_lm_eval_tasks,
    generate_sup_data,
    merge_adapters,
    report_alignment_run,
    run_clm_lora,
    run_inference_eval_wmt23,
    run_inference_massive,
    run_real_transfer_experiment,
)
from tests.support import REPO
from transformers_align.cli import comma_list

SCRIPTS = REPO / "scripts"
GENERATION_OLD = [
    "--peft-model-id",
    "A",
    "--chat-template",
    "midalign",
    "--batch-size",
    "3",
    "--max-new-tokens",
    "7",
    "--max-examples",
    "2",
]
GENERATION_NEW = [
    "--peft_model_id",
    "A",
    "--chat_template",
    "midalign",
    "--batch_size",
    "3",
    "--max_new_tokens",
    "7",
    "--max_examples",
    "2",
]
MASSIVE_OLD = ["--lang", "zh", "--partition", "dev", "--data-dir", "D", "--data-file", "F"]
MASSIVE_NEW = ["--lang", "zh", "--partition", "dev", "--data_dir", "D", "--data_file", "F"]

# (script, earlier spelling, new spelling): both must parse to equal dataclasses.
CASES = [
    (
        eval_icl,
        [
            "--model",
            "M",
            "--peft-model-id",
            "A",
            "--tasks",
            "xnli,pawsx",
            "--shots",
            "0,5",
            "--prompt-lang",
            "zh",
            "--test-lang",
            "en,zh",
            "--data-dir",
            "D",
            "--output-json",
            "o.json",
            "--batch-size",
            "4",
            "--length-normalize",
            "--dtype",
            "float16",
        ],
        [
            "--model_name_or_path",
            "M",
            "--peft_model_id",
            "A",
            "--tasks",
            "xnli",
            "pawsx",
            "--shots",
            "0",
            "5",
            "--prompt_lang",
            "zh",
            "--test_lang",
            "en",
            "zh",
            "--data_dir",
            "D",
            "--output_json",
            "o.json",
            "--batch_size",
            "4",
            "--length_normalize",
            "--dtype",
            "float16",
        ],
    ),
    (
        eval_mgsm,
        [
            "--data",
            "d.tsv",
            "--model-name",
            "M",
            *GENERATION_OLD[:2],
            "--batch-size",
            "3",
            "--max-new-tokens",
            "7",
            "--max-examples",
            "2",
            "--output-json",
            "o.json",
            "--predictions",
            "p.jsonl",
        ],
        [
            "--data",
            "d.tsv",
            "--model_name_or_path",
            "M",
            *GENERATION_NEW[:2],
            "--batch_size",
            "3",
            "--max_new_tokens",
            "7",
            "--max_examples",
            "2",
            "--output_json",
            "o.json",
            "--predictions",
            "p.jsonl",
        ],
    ),
    (
        run_inference_massive,
        ["--model-name", "M", *GENERATION_OLD, *MASSIVE_OLD, "--output-file", "o", "--no-intent"],
        ["--model_name_or_path", "M", *GENERATION_NEW, *MASSIVE_NEW, "--output_file", "o", "--no_intent"],
    ),
    (run_inference_massive, ["--base-model-name", "M"], ["--model_name_or_path", "M"]),
    (
        eval_massive,
        ["--pred-slots-file", "p", *MASSIVE_OLD, "--output-json", "o", "--max-examples", "3", "--allow-missing"],
        ["--pred_slots_file", "p", *MASSIVE_NEW, "--output_json", "o", "--max_examples", "3", "--allow_missing"],
    ),
    (
        run_inference_eval_wmt23,
        [
            "--model-name",
            "M",
            *GENERATION_OLD,
            "--source-lang",
            "en",
            "--lang",
            "zh",
            "--data-dir",
            "D",
            "--source-file",
            "s",
            "--reference-file",
            "r",
            "--output-file",
            "o",
            "--metrics-file",
            "m",
            "--comet-model",
            "c",
            "--comet-batch-size",
            "2",
        ],
        [
            "--model_name_or_path",
            "M",
            *GENERATION_NEW,
            "--source_lang",
            "en",
            "--lang",
            "zh",
            "--data_dir",
            "D",
            "--source_file",
            "s",
            "--reference_file",
            "r",
            "--output_file",
            "o",
            "--metrics_file",
            "m",
            "--comet_model",
            "c",
            "--comet_batch_size",
            "2",
        ],
    ),
    (run_inference_eval_wmt23, ["--evaluation-only", "--allow-missing"], ["--evaluation_only", "--allow_missing"]),
    (
        export_lm_eval_tasks,
        [
            "--data-dir",
            "D",
            "--output-dir",
            "O",
            "--tasks",
            "xcopa",
            "--prompt-lang",
            "zh",
            "--test-lang",
            "en,zh",
            "--seed",
            "2",
            "--eos-text",
            "<eos>",
        ],
        [
            "--data_dir",
            "D",
            "--output_dir",
            "O",
            "--tasks",
            "xcopa",
            "--prompt_lang",
            "zh",
            "--test_lang",
            "en",
            "zh",
            "--seed",
            "2",
            "--eos_text",
            "<eos>",
        ],
    ),
    (
        generate_sup_data,
        [
            "-m",
            "translation",
            "-l",
            "en",
            "de",
            "-x",
            "0.3",
            "-c",
            "0.2",
            "-r",
            "2",
            "-b",
            "B",
            "-t",
            "T",
            "-o",
            "O",
            "-s",
            "4",
        ],
        [
            "--mode",
            "translation",
            "--languages",
            "en",
            "de",
            "--cross_probability",
            "0.3",
            "--change_probability",
            "0.2",
            "--repeat",
            "2",
            "--bactrian_dir",
            "B",
            "--translation_file",
            "T",
            "--output_dir",
            "O",
            "--seed",
            "4",
        ],
    ),
    (
        generate_sup_data,
        [
            "--mode",
            "merge",
            "--inputs",
            "a",
            "b",
            "--output-file",
            "o",
            "--cross-probability",
            "0.1",
            "--change-probability",
            "0.9",
            "--bactrian-dir",
            "B",
            "--translation-file",
            "T",
            "--output-dir",
            "O",
        ],
        [
            "--mode",
            "merge",
            "--inputs",
            "a",
            "b",
            "--output_file",
            "o",
            "--cross_probability",
            "0.1",
            "--change_probability",
            "0.9",
            "--bactrian_dir",
            "B",
            "--translation_file",
            "T",
            "--output_dir",
            "O",
        ],
    ),
    (
        construct_dataset_lm,
        [
            "--input",
            "a.txt",
            "b.txt",
            "--language",
            "sw",
            "--output",
            "o",
            "--chunk-size",
            "64",
            "--prompt-units",
            "3",
            "--unit",
            "word",
            "--format",
            "text",
            "--text-field",
            "t",
            "--max-chunks",
            "5",
            "--prompt-field",
            "p",
            "--completion-field",
            "c",
        ],
        [
            "--input",
            "a.txt",
            "b.txt",
            "--language",
            "sw",
            "--output",
            "o",
            "--chunk_size",
            "64",
            "--prompt_units",
            "3",
            "--unit",
            "word",
            "--format",
            "text",
            "--text_field",
            "t",
            "--max_chunks",
            "5",
            "--prompt_field",
            "p",
            "--completion_field",
            "c",
        ],
    ),
    (
        merge_adapters,
        [
            "--task",
            "T",
            "--ref-target",
            "RT",
            "--ref-source",
            "RS",
            "--t",
            "0.5",
            "--out",
            "O",
            "--method",
            "delta-svd",
            "--rank",
            "4",
            "--allow-base-mismatch",
            "--overwrite",
        ],
        [
            "--task",
            "T",
            "--ref_target",
            "RT",
            "--ref_source",
            "RS",
            "--t",
            "0.5",
            "--out",
            "O",
            "--method",
            "delta-svd",
            "--rank",
            "4",
            "--allow_base_mismatch",
            "--overwrite",
        ],
    ),
    (
        analyze_alignment,
        [
            "--model",
            "M",
            "--peft-model-id",
            "A",
            "--pairs",
            "p.tsv",
            "--pooling",
            "last",
            "--skip-first",
            "0",
            "--skip-bos",
            "--layer",
            "2",
            "--max-pairs",
            "9",
            "--batch-size",
            "4",
            "--output-dir",
            "O",
            "--baseline-json",
            "b.json",
            "--dtype",
            "float16",
        ],
        [
            "--model_name_or_path",
            "M",
            "--peft_model_id",
            "A",
            "--pairs",
            "p.tsv",
            "--pooling",
            "last",
            "--skip_first",
            "0",
            "--skip_bos",
            "--layer",
            "2",
            "--max_pairs",
            "9",
            "--batch_size",
            "4",
            "--output_dir",
            "O",
            "--baseline_json",
            "b.json",
            "--dtype",
            "float16",
        ],
    ),
    (
        build_massive_training_data,
        [
            "--massive-files",
            "a",
            "b",
            "--partition",
            "dev",
            "--pairs",
            "p",
            "--output",
            "o",
            "--tokenizer",
            "T",
            "--no-intent",
        ],
        [
            "--massive_files",
            "a",
            "b",
            "--partition",
            "dev",
            "--pairs",
            "p",
            "--output",
            "o",
            "--tokenizer_name",
            "T",
            "--no_intent",
        ],
    ),
]


@pytest.mark.parametrize("script,old,new", CASES, ids=lambda case: getattr(case, "__name__", "").split(".")[-1])
def test_old_flag_spellings_parse_like_the_new_ones(script, old, new):
    old_args, new_args = script.parse_args(old), script.parse_args(new)
    assert old_args == new_args
    defaults_changed = [
        field for parsed in new_args for field, value in vars(parsed).items() if value not in (None, False)
    ]
    assert defaults_changed  # the flags were read, not left at their defaults


def test_parsed_values_and_per_script_defaults():
    model, icl = eval_icl.parse_args(["--model", "M", "--tasks", "xnli, pawsx", "--shots", "0,5", "--test-lang", "zh"])
    assert (model.model_name_or_path, icl.tasks, icl.shots, icl.test_lang) == ("M", ["xnli", "pawsx"], [0, 5], ["zh"])
    assert run_inference_massive.parse_args(["--model", "M"])[2].batch_size == 16
    assert run_inference_eval_wmt23.parse_args(["--model", "M"])[2].max_new_tokens == 256
    assert eval_mgsm.parse_args(["--model", "M", "--data", "d"])[1].max_new_tokens == 512
    assert comma_list(["a,b", " c ", ""]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "script,argv,message",
    [
        (eval_icl, [], "required: --model_name_or_path"),
        (run_inference_eval_wmt23, ["--lang", "zh"], "required: --model_name_or_path"),
        (eval_icl, ["--model", "M", "--shots", "0,five"], "--shots must be whole numbers"),
        (generate_sup_data, ["--mode", "merge"], "--mode merge needs --inputs and --output_file"),
        (
            eval_massive,
            ["--pred_slots_file", "p", "--no-such-flag"],
            "not used by the HfArgumentParser: ['--no-such-flag']",
        ),
    ],
)
def test_usage_errors_are_one_line(script, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_evaluation_only_needs_no_model():
    model, *_, wmt = run_inference_eval_wmt23.parse_args(["--evaluation_only"])
    assert model.model_name_or_path is None and wmt.evaluation_only


# Every script that loads a model, the extra arguments it requires, and where the parsed model path lands.
MODEL_SCRIPTS = [
    (eval_icl, [], lambda parsed: parsed[0].model_name_or_path),
    (eval_mgsm, ["--data", "d.tsv"], lambda parsed: parsed[0].model_name_or_path),
    (run_inference_massive, [], lambda parsed: parsed[0].model_name_or_path),
    (run_inference_eval_wmt23, [], lambda parsed: parsed[0].model_name_or_path),
    (analyze_alignment, ["--pairs", "p.tsv"], lambda parsed: parsed[0].model_name_or_path),
    (report_alignment_run, ["--adapter", "A", "--pairs", "p.tsv"], lambda parsed: parsed.model_name_or_path),
    (run_real_transfer_experiment, [], lambda parsed: parsed.model_name_or_path),
    (run_clm_lora, ["--train_file", "t.json", "--output_dir", "o"], lambda parsed: parsed[0].model_name_or_path),
]


@pytest.mark.parametrize(
    "script,required,model_path", MODEL_SCRIPTS, ids=lambda case: getattr(case, "__name__", "").split(".")[-1]
)
@pytest.mark.parametrize("flag", ["--model_name_or_path", "--model", "--model-name"])
def test_every_model_script_takes_model_name_or_path_and_its_aliases(script, required, model_path, flag):
    assert model_path(script.parse_args([flag, "path/to/model", *required])) == "path/to/model"


def test_scripts_never_import_scripts():
    importing = []
    for path in sorted(SCRIPTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            importing += [f"{path.name}: {name}" for name in names if name == "scripts" or name.startswith("scripts.")]
    assert importing == []


SCRIPT_MODULES = sorted(path.stem for path in SCRIPTS.glob("*.py") if path.stem != "__init__")


@pytest.mark.parametrize("name", SCRIPT_MODULES)
def test_every_script_flag_is_snake_case_with_help_and_other_spellings_are_aliases(name, monkeypatch, capsys):
    parsers = []
    monkeypatch.setattr(argparse.ArgumentParser, "print_help", lambda parser, *_: parsers.append(parser))
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"scripts.{name}").main(["--help"])
    assert exit_info.value.code in (0, None) and len(parsers) == 1
    for action in parsers[0]._actions:
        if action.dest == "help":
            continue
        canonical = action.option_strings[0]  # what --help shows first; the rest are earlier spellings
        assert re.fullmatch(r"--[a-z0-9_]+", canonical), f"{name}: {canonical}"
        assert action.help, f"{name}: {canonical} has no help"


def test_no_script_or_library_module_parses_with_bare_argparse():
    roots = [SCRIPTS, SCRIPTS.parent / "src" / "transformers_align", SCRIPTS.parent / "tools"]
    users = [
        str(path.relative_to(SCRIPTS.parent))
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if re.search(r"^\s*import argparse|^\s*from argparse ", path.read_text(encoding="utf-8"), re.M)
    ]
    assert users == []
