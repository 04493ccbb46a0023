"""The GPU recipe's DeepSpeed config (config/deepspeed_config.json), as `bash scripts/train_with_alignment.sh` uses it
on a GPU machine: every ``auto`` resolved by the Trainer's own config handling from the arguments the recipe
launches, and the result accepted by DeepSpeed's own config classes. A value that cannot be resolved fails here,
not on the cluster."""

import json

import pytest
from transformers import AutoModelForCausalLM, HfArgumentParser
from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, unset_hf_deepspeed_config

from tests.support import REPO
from tests.support.recipe_launch import gpu_branch_arguments
from transformers_align.training.arguments import (
    AlignmentArguments,
    AlignmentTrainingArguments,
    DataArguments,
    ModelArguments,
)

GPUS = 4  # the published recipe: NPROC=4 on one node
TRAIN_FILE = REPO / "data_example/train_baseline_with_alignment.json"


@pytest.fixture(scope="module")
def launched(tmp_path_factory, tiny_model_dir):
    """The run_clm_lora arguments and torchrun options of the GPU branch, for a real-model folder (the tiny one)."""
    folder = tmp_path_factory.mktemp("gpu_branch")
    return gpu_branch_arguments(folder, tiny_model_dir, GPUS, TRAIN_FILES=str(TRAIN_FILE))


def flag(argv, name):
    return argv[argv.index(name) + 1]


def autos(node, path=""):
    """The keys still set to "auto", by dotted path."""
    if isinstance(node, dict):
        return [key for k, v in node.items() for key in autos(v, f"{path}{k}.")]
    return [path.rstrip(".")] if node == "auto" else []


def test_the_gpu_branch_launches_bf16_zero2_checkpointing_and_torchrun_over_every_gpu(launched):
    argv, output, torchrun = launched
    assert flag(torchrun, "--nproc_per_node") == str(GPUS)
    assert flag(argv, "--deepspeed") == "./config/deepspeed_config.json"
    assert (flag(argv, "--bf16"), flag(argv, "--torch_dtype"), flag(argv, "--gradient_checkpointing")) == (
        "True",
        "bfloat16",
        "True",
    )
    assert "precision bf16, DeepSpeed ./config/deepspeed_config.json, gradient checkpointing True" in output


def test_every_auto_resolves_from_the_recipes_arguments_and_deepspeed_accepts_the_result(
    launched, tiny_model_dir, monkeypatch
):
    argv, _, _ = launched
    deepspeed_file = REPO / flag(argv, "--deepspeed")
    assert autos(json.loads(deepspeed_file.read_text()))  # the file does leave values to the Trainer
    # The Trainer's arguments as the recipe gives them (parsed without --deepspeed, which would start the
    # distributed backend here); world size: the GPUs torchrun starts.
    i = argv.index("--deepspeed")
    # Parsing bf16 arguments sets ACCELERATE_MIXED_PRECISION in os.environ: restored after the test, so that later
    # in-process runs of the suite do not train under bf16 autocast.
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    *_, args = HfArgumentParser(
        (ModelArguments, AlignmentArguments, DataArguments, AlignmentTrainingArguments)
    ).parse_args_into_dataclasses(argv[:i] + argv[i + 2 :])
    args.__class__ = type("OnGpus", (type(args),), {"world_size": GPUS})

    config = HfTrainerDeepSpeedConfig(str(deepspeed_file))
    try:
        config.trainer_config_process(args)
        config.trainer_config_finalize(
            args, AutoModelForCausalLM.from_pretrained(tiny_model_dir), num_training_steps=100
        )
    finally:  # the config registers itself globally: later Trainers in this process would take DeepSpeed as on
        unset_hf_deepspeed_config()
    resolved = config.config
    assert autos(resolved) == [] and config.mismatches == []
    batch = int(flag(argv, "--per_device_train_batch_size"))
    accumulation = int(flag(argv, "--gradient_accumulation_steps"))
    assert resolved["train_micro_batch_size_per_gpu"] == batch
    assert resolved["gradient_accumulation_steps"] == accumulation
    assert resolved["train_batch_size"] == GPUS * batch * accumulation
    assert resolved["bf16"]["enabled"] is True and resolved["fp16"]["enabled"] is False
    assert resolved["optimizer"]["params"] == {
        "lr": float(flag(argv, "--learning_rate")),
        "betas": [args.adam_beta1, args.adam_beta2],
        "eps": args.adam_epsilon,
        "weight_decay": float(flag(argv, "--weight_decay")),
    }
    assert resolved["gradient_clipping"] == args.max_grad_norm

    # DeepSpeed's own parsing and sanity checks (batch arithmetic over the world size, ZeRO stage 2 with the
    # optimizer offloaded, bf16) on the resolved values, as the engine will read them on GPUS ranks.
    import deepspeed.runtime.config as ds_config

    monkeypatch.setattr(ds_config.dist, "get_rank", lambda *a, **k: 0)
    monkeypatch.setattr(ds_config.dist, "get_world_size", lambda *a, **k: GPUS)
    parsed = ds_config.DeepSpeedConfig(json.loads(json.dumps(resolved)))
    assert parsed.world_size == GPUS and parsed.train_batch_size == GPUS * batch * accumulation
    assert parsed.zero_optimization_stage == 2 and parsed.bfloat16_config.enabled
    assert parsed.zero_config.offload_optimizer.device == "cpu"
    assert parsed.gradient_accumulation_steps == accumulation and parsed.gradient_clipping == args.max_grad_norm
