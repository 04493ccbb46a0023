"""The validation pass of a training run (training/preflight.py): it runs before any data or model loads, lets a
valid configuration through unchanged, and the checks behind it (repeated pairs, checkpoint files) hold."""

import copy
import logging
import random
from dataclasses import asdict

import numpy as np
import pytest
import torch
from transformers import HfArgumentParser

from tests.support import REPO
from tests.support.training import write_rows
from transformers_align.errors import UserError
from transformers_align.training.arguments import (
    AlignmentArguments,
    AlignmentTrainingArguments,
    DataArguments,
    ModelArguments,
)
from transformers_align.training.launch import argv_with_cpu_default


def parse(model_dir, train_file, output_dir, *extra):
    """The arguments of train_with_alignment.sh's run on ``model_dir``, as scripts.run_clm_lora parses them."""
    argv = [
        "--model_name_or_path",
        str(model_dir),
        "--train_file",
        str(train_file),
        "--output_dir",
        str(output_dir),
        "--do_train",
        "--use_lora",
        "True",
        "--lora_config",
        str(REPO / "config/lora_config.json"),
        "--training_mode",
        "alternate",
        "--per_device_train_batch_size",
        "8",
        "--contrastive_loss_temperature",
        "0.1",
        "--distance_function",
        "cosine",
        "--contrastive_pooling_type",
        "mean",
        "--report_to",
        "none",
        *extra,
    ]
    parser = HfArgumentParser((ModelArguments, AlignmentArguments, DataArguments, AlignmentTrainingArguments))
    return parser.parse_args_into_dataclasses(argv_with_cpu_default(argv))


@pytest.fixture
def nothing_loads(monkeypatch):
    """Every way a run reads data or a model fails the test: the checks must come first."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers_align.modeling import loading
    from transformers_align.training import run

    def fail(*args, **kwargs):
        raise AssertionError("data or a model was loaded before the arguments were validated")

    for owner, name in (
        (loading, "load_causal_lm"),
        (loading, "load_tokenizer"),
        (run, "build_streams"),
        (run, "build_training_data"),
        (AutoTokenizer, "from_pretrained"),
    ):
        monkeypatch.setattr(owner, name, fail)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fail)


BAD = [
    (("--additional_loss_layer", "0"), r"additional_loss_layer=0 is out of range"),
    (("--additional_loss_layer", "5"), r"the layer must be between 1 and 4"),
    (("--contrastive_loss_temperature", "0"), r"contrastive_loss_temperature must be > 0"),
    (("--distance_function", "cos"), r"distance_function='cos' is not supported"),
    (("--contrastive_pooling_type", "avg"), r"contrastive_pooling_type='avg' is not supported"),
    (("--alternate_training", "--training_mode", "joint"), r"--training_mode joint contradicts --alternate_training"),
    (("--lora_config", str(REPO / "config/lora_config_bloom.json")), r"query_key_value do not exist in this llama"),
    (("--alignment_file", "/nonexistent/pairs.tsv"), r"--alignment_file /nonexistent/pairs.tsv: no such file"),
]


@pytest.mark.parametrize("extra, message", BAD, ids=[message for _, message in BAD])
def test_every_mistake_is_refused_before_any_data_or_model_loads(
    tiny_model_dir, tmp_path, nothing_loads, extra, message
):
    from transformers_align.training.run import train

    arguments = parse(tiny_model_dir, write_rows(tmp_path / "rows.json"), tmp_path / "out", *extra)
    with pytest.raises(UserError, match=message):
        train(*arguments)
    assert not (tmp_path / "out").exists()


def test_a_valid_configuration_passes_unchanged_without_loading_anything(tiny_model_dir, tmp_path, nothing_loads):
    from transformers_align.training.preflight import check_run

    arguments = parse(tiny_model_dir, write_rows(tmp_path / "rows.json"), tmp_path / "out")
    before = [copy.deepcopy(asdict(a)) for a in arguments[:3]] + [arguments[3].to_dict()]
    check_run(*arguments)
    assert [asdict(a) for a in arguments[:3]] + [arguments[3].to_dict()] == before
    assert not (tmp_path / "out").exists()


def test_the_run_arguments_script_refuses_a_bad_deepspeed_path_in_one_line(capsys):
    from scripts.run_clm_lora import main

    with pytest.raises(SystemExit) as stopped:
        main(
            ["--model_name_or_path", "m", "--train_file", "t", "--output_dir", "o", "--deepspeed", "/nonexistent.json"]
        )
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("run_clm_lora: error: ") and "/nonexistent.json" in line


def test_repeated_pairs_are_removed_with_a_count(tmp_path, tokenizer, caplog):
    from transformers_align.data.features import FeatureOptions
    from transformers_align.data.streams import build_streams

    rng = random.Random(0)
    pairs = [(f"eins {i % 5}", f"one {i % 5}") for i in range(20)] + [("eins 0", "uno")]  # the last: one side shared
    rng.shuffle(pairs)
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        streams = build_streams([], [str(path)], ["pairs"], tokenizer, FeatureOptions(block_size=64))
    distinct = list(dict.fromkeys(pairs))  # first occurrences, in file order
    assert len(streams.pairs) == len(distinct) == 6 and streams.pairs.repeats_removed == len(pairs) - 6
    kept = [tokenizer.decode(row["input_ids_parallel_1"], skip_special_tokens=True) for row in streams.pairs.examples]
    assert kept == [b for _, b in distinct]
    assert f"removed {len(pairs) - 6} repeated pair(s)" in caplog.text


def test_checkpoint_files_a_run_writes_pass_and_code_carrying_ones_are_refused(tmp_path):
    from transformers import get_scheduler

    from transformers_align.training.checkpoints import OutputFolderError, check_pickled_files

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    scheduler = get_scheduler("inverse_sqrt", optimizer, num_warmup_steps=1, num_training_steps=4)
    args = AlignmentTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    torch.save(optimizer.state_dict(), tmp_path / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp_path / "scheduler.pt")
    torch.save(args, tmp_path / "training_args.bin")
    torch.save(
        {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.get_rng_state()},
        tmp_path / "rng_state.pth",
    )
    check_pickled_files(tmp_path)  # what the Trainer writes is let through
    torch.save({"state": {}, "hook": print}, tmp_path / "scheduler.pt")
    with pytest.raises(OutputFolderError, match=r"refused to read .*scheduler\.pt: .*\(it names builtins\.print\)"):
        check_pickled_files(tmp_path)
