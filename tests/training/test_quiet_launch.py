"""No warning a user cannot act on: DDP's find_unused_parameters warning under torchrun on CPU (task and joint
steps reach every adapter parameter, so the search is off), DeepSpeed's "Setting accelerator to CPU" on the
Python API path (train called with arguments parsed without scripts.run_clm_lora's CPU default)."""

import subprocess
import sys

import pytest

from tests.support import REPO
from tests.support.processes import cpu_env, torchrun_command
from tests.support.training import write_rows

pytestmark = pytest.mark.slow  # torchrun and whole training runs in subprocesses

DDP_WARNING = "find_unused_parameters=True was specified"
DEEPSPEED_WARNING = "Setting accelerator to CPU"


def _arguments(tiny_model_dir, tmp_path, mode):
    return [
        "--model_name_or_path",
        str(tiny_model_dir),
        "--train_file",
        str(write_rows(tmp_path / "rows.jsonl")),
        "--output_dir",
        str(tmp_path / "out"),
        "--use_lora",
        "--lora_config",
        str(REPO / "config/lora_config.json"),
        "--do_train",
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "3",
        "--report_to",
        "none",
        "--training_mode",
        mode,
        "--additional_loss_layer",
        "1",
        "--disable_tqdm",
        "true",
    ]


@pytest.mark.parametrize("mode", ["task", "joint"])
def test_torchrun_on_cpu_trains_without_the_ddp_warning(mode, tiny_model_dir, tmp_path, datasets_cache):
    command = torchrun_command("-m", "scripts.run_clm_lora", *_arguments(tiny_model_dir, tmp_path, mode))
    env = cpu_env(HF_DATASETS_CACHE=str(datasets_cache))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    # Without the search, a parameter without a gradient would stop DDP at the next step: 3 steps finish.
    assert result.returncode == 0, result.stderr[-4000:]
    assert DDP_WARNING not in result.stderr
    assert DEEPSPEED_WARNING not in result.stderr


API_RUN = """
import sys
from transformers import HfArgumentParser
from transformers_align.training.arguments import (
    AlignmentArguments, AlignmentTrainingArguments, DataArguments, ModelArguments,
)
from transformers_align.training.run import train

parser = HfArgumentParser((ModelArguments, AlignmentArguments, DataArguments, AlignmentTrainingArguments))
train(*parser.parse_args_into_dataclasses(args=sys.argv[1:]))
"""


def test_the_api_path_trains_without_the_deepspeed_warning(tiny_model_dir, tmp_path, datasets_cache):
    env = cpu_env(HF_DATASETS_CACHE=str(datasets_cache))
    env.pop("DS_ACCELERATOR", None)
    command = [sys.executable, "-c", API_RUN, *_arguments(tiny_model_dir, tmp_path, "alternate")]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert DEEPSPEED_WARNING not in result.stderr
