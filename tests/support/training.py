"""Training runs as the Python API makes them (rows written to disk, ``train`` called with parsed arguments), and
the comparison of two runs' logged losses and adapters."""

import json
from pathlib import Path

import pytest
from transformers import HfArgumentParser

from tests.support import REPO
from transformers_align.training.arguments import (
    AlignmentArguments,
    AlignmentTrainingArguments,
    DataArguments,
    ModelArguments,
)
from transformers_align.training.launch import argv_with_cpu_default
from transformers_align.training.run import train

PREFIX = "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>\n<|start_header_id|>assistant<|end_header_id|>\n\n"
PAIRS = [
    ("Réveille-moi à cinq heures", "Wake me up at five"),
    ("明天会下雨吗", "Will it rain tomorrow"),
    ("Spiele Musik", "Play music"),
    ("Какая погода", "What is the weather"),
]


def pair(i):
    """The ``i``-th of distinct parallel pairs (the pair stream removes repeated ones): ``PAIRS`` numbered."""
    source, target = PAIRS[i % len(PAIRS)]
    return f"{source} {i}", f"{target} {i}"


def write_rows(path, n=24, pairs=True):
    """Rows whose prompts and completions differ in length (so token means differ from means of row means)."""
    rows = []
    for i in range(n):
        row = {
            "prefix": PREFIX.format(f"set an alarm for {i}"),
            "text": f"time: {i}{' and a half' * (i % 3)}<|eot_id|>",
        }
        if pairs:
            row["text_parallel_0"], row["text_parallel_1"] = pair(i)
        rows.append(row)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def run_training(model_dir, train_file, output_dir, *extra):
    argv = [
        "--model_name_or_path",
        str(model_dir),
        "--train_file",
        str(train_file),
        "--output_dir",
        str(output_dir),
        "--use_lora",
        "--lora_config",
        str(REPO / "config/lora_config.json"),
        "--do_train",
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "1e-3",
        "--report_to",
        "none",
        "--logging_steps",
        "1",
        "--seed",
        "3",
        "--additional_loss_layer",
        "2",
        "--block_size",
        "128",
        "--disable_tqdm",
        "true",
        *extra,
    ]
    parser = HfArgumentParser((ModelArguments, AlignmentArguments, DataArguments, AlignmentTrainingArguments))
    return train(*parser.parse_args_into_dataclasses(argv_with_cpu_default(argv)))  # as scripts.run_clm_lora


def write_lora_config(path):
    config = json.loads((REPO / "config/lora_config.json").read_text())
    path.write_text(json.dumps(dict(config, lora_dropout=0.0)))  # dropout would draw different masks per rank
    return path


def assert_same_run(output_a, output_b, losses_a, losses_b):
    assert len(losses_a) == len(losses_b) > 0
    for (task_a, align_a), (task_b, align_b) in zip(losses_a, losses_b):
        assert (task_a is None) == (task_b is None) and (align_a is None) == (align_b is None)
        assert task_a is None or task_a == pytest.approx(task_b, abs=1e-5)
        assert align_a is None or align_a == pytest.approx(align_b, abs=1e-5)
    from safetensors.torch import load_file

    a, b = (
        load_file(Path(output_a) / "adapter_model.safetensors"),
        load_file(Path(output_b) / "adapter_model.safetensors"),
    )
    assert a.keys() == b.keys() and max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    assert any(float(b[k].abs().max()) > 0 for k in b if "lora_B" in k)  # the adapter did move: equal is not vacuous


def script_argv(model_dir, tmp_path, *extra):
    """``-m scripts.run_clm_lora`` and its flags: 2 alternate steps, gathered negatives, no checkpoint."""
    return [
        "-m",
        "scripts.run_clm_lora",
        "--model_name_or_path",
        str(model_dir),
        "--train_file",
        str(write_rows(tmp_path / "train.json", n=16)),
        "--output_dir",
        str(tmp_path / "out"),
        "--use_lora",
        "--lora_config",
        str(REPO / "config/lora_config.json"),
        "--do_train",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--training_mode",  # a later --training_mode in ``extra`` replaces it (mid-align's flag would contradict)
        "alternate",
        "--additional_loss_layer",
        "2",
        "--gather_negatives_across_ranks",
        "--report_to",
        "none",
        "--logging_steps",
        "1",
        "--block_size",
        "128",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        *extra,
    ]
