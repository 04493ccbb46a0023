"""The memory pre-check (training.memory): the estimate from the model's config, batch, block, precision and
gradient checkpointing, the refusal of a run that cannot fit before its model loads, and the estimate against a
measured peak. The recipe's refusal itself is a case of the fault battery (tests/faults/cases_recipes.py)."""

import json

import pytest

from tests.support import REPO
from tests.support.models import write_smollm2_config
from tests.support.peak_memory import run_with_peak_memory
from tests.support.processes import cpu_env
from transformers_align.training.memory import (
    ESTIMATE_FACTOR,
    GIB,
    HIDDEN_VECTORS_PER_BLOCK,
    RunDoesNotFitError,
    RunSettings,
    check_fits,
    estimate,
    model_shape,
)

MACHINE = 24 * GIB  # this project's machines: 2 cores, 24 GiB
GPU_SCALE = RunSettings(batch_size=32, block_size=2048, lora_dropout=0.1)  # the real-model recipe's defaults, on CPU
DEFAULT_RUN = RunSettings(batch_size=8, block_size=256)  # scripts/default_run.sh, LoRA without dropout


def lora(dropout):
    return dict(json.loads((REPO / "config/lora_config.json").read_text()), lora_dropout=dropout)


@pytest.fixture(scope="module")
def shape(tmp_path_factory):
    return model_shape(write_smollm2_config(tmp_path_factory.mktemp("smollm2_config")), lora(0.0))


def test_the_shape_is_read_from_the_config_alone(shape):
    # PEFT's counts in the default run's log: all params 136,957,248 of which 2,442,240 LoRA (r 8, 7 modules).
    assert shape.parameters == 136_957_248 - 2_442_240 and shape.lora_parameters == 2_442_240
    h, kv, i = 576, 3 * 64, 1536
    inputs = 6 * h + i  # q k v o gate up read h, down reads i
    outputs = h + kv + kv + h + i + i + h
    assert shape.blocks == 30
    assert (shape.linear_values_per_token, shape.adapted_inputs_per_token) == (inputs + outputs, inputs)


def test_the_activation_term_is_the_documented_formula(shape):
    per_block = shape.linear_values_per_token + HIDDEN_VECTORS_PER_BLOCK * shape.hidden
    tokens = 8 * 256
    assert estimate(shape, DEFAULT_RUN).activations == tokens * 30 * per_block * 4
    with_dropout = RunSettings(8, 256, lora_dropout=0.1)
    assert estimate(shape, with_dropout).activations == tokens * 30 * (per_block + shape.adapted_inputs_per_token) * 4
    checkpointed = RunSettings(8, 256, precision="bf16", gradient_checkpointing=True)
    assert estimate(shape, checkpointed).activations == tokens * (30 * shape.hidden + per_block) * 2


def test_gpu_scale_settings_are_refused_on_24_gib_naming_the_setting_to_lower(shape):
    with pytest.raises(RunDoesNotFitError) as refused:
        check_fits(shape, GPU_SCALE, MACHINE, "this machine has")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("this run needs about 130.")
    assert "most of it activations" in message and "batch 32 x block 2048" in message
    assert message.endswith(
        "but this machine has 24.0 GiB: lower TRAIN_BSZ (--per_device_train_batch_size) or BLOCK_SIZE "
        "(--block_size), or set GRADIENT_CHECKPOINTING=True"
    )
    # Two processes on one CPU share its RAM: the default run fits once, not 5 times over.
    with pytest.raises(RunDoesNotFitError, match=r"per process x 5\), most of it activations"):
        check_fits(shape, RunSettings(8, 256, processes=5), MACHINE)


def test_the_default_run_and_the_gpu_recipe_on_an_80_gib_gpu_are_accepted(shape):
    assert check_fits(shape, DEFAULT_RUN, MACHINE).total < MACHINE / 4  # well under the machine
    gpu = RunSettings(32, 2048, "bf16", half_weights=True, gradient_checkpointing=True, lora_dropout=0.1, device="cuda")
    assert check_fits(shape, gpu, 80 * GIB).total < 80 * GIB / 4


@pytest.mark.slow  # one SmolLM2 training step through the recipe
def test_the_estimate_is_within_the_stated_factor_of_a_measured_peak(smollm2_dir, tmp_path):
    # Rows longer than the block, so every row of the step is at the block size, as the estimate assumes.
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing".split()
    rows = [{"prefix": "Write: ", "text": " ".join(words[(i + j) % len(words)] for j in range(700))} for i in range(4)]
    (tmp_path / "rows.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = RunSettings(batch_size=2, block_size=512)
    env = cpu_env(
        MODEL_PATH=str(smollm2_dir),
        OUTDIR=str(tmp_path / "out"),
        TRAIN_FILES=str(tmp_path / "rows.json"),
        TRAIN_BSZ=str(run.batch_size),
        BLOCK_SIZE=str(run.block_size),
        GRAD_ACC="1",
        LORA_CONFIG=str(REPO / "config/lora_config_no_dropout.json"),
    )
    command = ["bash", str(REPO / "scripts/train_baseline.sh"), "--max_steps", "1", "--save_strategy", "no"]
    returncode, output, peak = run_with_peak_memory(command, timeout=900, env=env)
    assert returncode == 0, output[-3000:]
    estimated = estimate(model_shape(smollm2_dir, lora(0.0)), run).total
    assert 1 / ESTIMATE_FACTOR <= estimated / peak <= ESTIMATE_FACTOR, (estimated / GIB, peak / GIB)
