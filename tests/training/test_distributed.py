"""Data parallelism on CPU: gathered negatives under DDP (2 gloo processes), the Trainer under torchrun
equal to one process on the global batch, and DeepSpeed ZeRO-2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support import REPO
from tests.support.processes import cpu_env, torchrun_command
from tests.support.training import assert_same_run, run_training, script_argv, write_lora_config
from transformers_align.training.checkpoints import DEEPSPEED_GLOBALS, check_deepspeed_files

pytestmark = pytest.mark.slow  # end to end: a script, torchrun or a real model


def test_gathered_negatives_under_ddp_equal_one_process_on_the_global_batch(tmp_path):
    command = torchrun_command(str(REPO / "tests/training/distributed_worker.py"), str(tmp_path))
    result = subprocess.run(command, env=cpu_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for rank in ranks:
        assert rank["mean_loss"] == pytest.approx(rank["single_loss"], abs=1e-5)
        assert rank["loss"] == pytest.approx(rank["single_loss"], abs=1e-5)  # every rank reports the global loss
        assert rank["max_grad_gap"] < 1e-5  # averaged DDP gradients = the single process's gradients
        assert rank["unused_have_no_grad"]


def logged(output_dir):
    history = json.loads((Path(output_dir) / "trainer_state.json").read_text())["log_history"]
    return [(h.get("task_loss"), h.get("alignment_loss")) for h in history if "loss" in h]


@pytest.mark.parametrize("gathered", [True, False])
def test_two_torchrun_processes_equal_one_process(tmp_path, tiny_model_dir, gathered, datasets_cache):
    # Rows of different labelled lengths: the task loss is the token mean of the global batch, not a mean of rank means.
    # With gathered negatives both ranks' pairs form one InfoNCE batch: equal to one process on the doubled batch.
    # Without, each rank's InfoNCE has its own pairs as negatives: equal to one process accumulating the two halves.
    lora = write_lora_config(tmp_path / "lora.json")
    mode = ["--training_mode", "alternate" if gathered else "alignment"]
    extra = [
        "--lora_config",
        str(lora),
        "--max_steps",
        "4",
        "--learning_rate",
        "1e-3",
        "--seed",
        "3",
        *mode,
        "--gather_negatives_across_ranks",
        str(gathered),
    ]
    command = torchrun_command(*script_argv(tiny_model_dir, tmp_path, *extra))
    result = subprocess.run(
        command,
        cwd=REPO,
        env=cpu_env(HF_DATASETS_CACHE=str(datasets_cache)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    single_batch = (
        ["--per_device_train_batch_size", "4"]
        if gathered
        else ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2"]
    )
    run_training(
        tiny_model_dir, tmp_path / "train.json", tmp_path / "single", "--block_size", "128", *extra, *single_batch
    )
    assert_same_run(tmp_path / "out", tmp_path / "single", logged(tmp_path / "out"), logged(tmp_path / "single"))


def test_a_trainer_that_sees_another_world_than_torchrun_stops_with_one_line(tmp_path, tiny_model_dir):
    # --use_cpu False on a machine without GPU: accelerate forms no process group, each rank would train alone
    # (tests/training/test_launch.py checks that the default, use_cpu added by run_clm_lora, equals one process).
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine use_cpu False forms an nccl group: nothing disagrees")
    command = torchrun_command(*script_argv(tiny_model_dir, tmp_path, "--use_cpu", "False"))
    result = subprocess.run(command, cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("run_clm_lora: error: ")]
    assert errors == [
        "run_clm_lora: error: the launcher started 2 processes but the Trainer sees a world of 1 (not_parallel): each "
        "process would train alone on the same data. On a machine without GPU pass --use_cpu True "
        "(scripts.run_clm_lora adds it by itself)"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("optimizer_from", ["deepspeed_config", "trainer"])
def test_deepspeed_zero2_runs_lora_steps_on_cpu(tmp_path, tiny_model_dir, optimizer_from):
    # With the Trainer's own optimizer, LoRA's empty no-decay group used to break the scheduler (environment.md).
    config = json.loads((REPO / "config/deepspeed_config_cpu.json").read_text())
    if optimizer_from == "trainer":
        del config["optimizer"]
    (tmp_path / "ds.json").write_text(json.dumps(config))
    env = cpu_env(
        RANK="0",
        LOCAL_RANK="0",
        WORLD_SIZE="1",
        TORCH_EXTENSIONS_DIR=os.environ.get("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache/torch_extensions")),
    )
    saving = ["--save_strategy", "steps", "--save_steps", "2"]
    command = [
        sys.executable,
        *script_argv(tiny_model_dir, tmp_path, "--deepspeed", str(tmp_path / "ds.json"), *saving),
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "'alignment_loss'" in result.stdout and "'task_loss'" in result.stdout
    assert (tmp_path / "out/adapter_model.safetensors").is_file()
    # Resuming would let DeepSpeed unpickle these files whole: each names only globals known to be DeepSpeed's.
    files = sorted((tmp_path / "out/checkpoint-2").glob("global_step2/*.pt"))
    named = set().union(*(torch.serialization.get_unsafe_globals_in_checkpoint(str(f)) for f in files))
    assert len(files) == 2 and named and named <= DEEPSPEED_GLOBALS
    check_deepspeed_files(tmp_path / "out/checkpoint-2")
