"""A diverged run stops on every rank at its first non-finite step, keeping the checkpoints before it; a stalled
run (gradient norm 0, losses at chance) is warned about once (training/safety.py)."""

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from tests.support import REPO
from tests.support.processes import cpu_env, torchrun_command
from tests.support.training import run_training, script_argv, write_rows
from transformers_align.losses import info_nce
from transformers_align.tiny import byte_level_tokenizer
from transformers_align.training.safety import TrainingDiverged, TrainingSafety, alignment_chance

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OVERFLOWING_RATE = "1e20"  # the first step's update overflows the activations: step 2's loss is nan
SATURATING_RATE = "1e6"  # the first step's update saturates them: from step 2 the outputs ignore the inputs
MODE = ["--alternate_training", "--max_steps", "6"]  # step 1 task, step 2 alignment, ...


@pytest.mark.parametrize("direction", ["one_way", "symmetric"])
@pytest.mark.parametrize("hard_negatives", [False, True])
def test_alignment_chance_is_the_info_nce_of_equal_similarities(direction, hard_negatives):
    same = torch.ones(4, 8)  # every pair, and every candidate, equally similar
    loss = info_nce(same, same, 0.05, direction=direction, hard_negatives=same if hard_negatives else None)
    config = SimpleNamespace(contrastive_direction=direction, gather_negatives_across_ranks=True)
    assert alignment_chance(4, config, hard_negatives, world_size=1) == pytest.approx(float(loss), abs=1e-6)
    assert alignment_chance(4, config, False, world_size=2) == pytest.approx(math.log(8))  # gathered negatives
    config.gather_negatives_across_ranks = False
    assert alignment_chance(4, config, False, world_size=2) == pytest.approx(math.log(4))


def _trainer(max_steps):
    return SimpleNamespace(
        state=SimpleNamespace(global_step=0, max_steps=max_steps),
        control=SimpleNamespace(should_save=False),
        accelerator=SimpleNamespace(num_processes=1, optimizer_step_was_skipped=False),
        args=SimpleNamespace(output_dir=None, learning_rate=1.0, max_grad_norm=1.0),
        is_world_process_zero=lambda: True,
    )


def _steps(safety, trainer, steps):
    """Feed (grad_norm, task_loss) per optimizer step, as compute_loss and the Trainer's hook do."""
    for grad_norm, task_loss in steps:
        safety.record(SimpleNamespace(task_loss=torch.tensor(task_loss)), {}, world_size=1)
        trainer.state.global_step += 1
        safety.check(trainer, torch.tensor(grad_norm))


def test_a_stall_is_warned_once_after_its_window_and_a_recovery_resets_it(caplog):
    chance = math.log(262)
    trainer = _trainer(max_steps=100)
    safety = TrainingSafety(SimpleNamespace(vocab_size=262), stall_warning_steps=3)
    # At chance with a gradient (the first steps of a run), or a zero gradient off chance: no stall.
    _steps(safety, trainer, [(1.0, chance), (0.0, chance + 0.1), (0.0, chance), (0.0, chance), (2.0, chance)])
    assert not caplog.records
    _steps(safety, trainer, [(0.0, chance + 1e-5)] * 5)  # steps 6-10 stalled
    assert [r.getMessage()[:32] for r in caplog.records] == ["training stalled at steps 6-8: t"]
    assert "task_loss sit exactly at chance" in caplog.records[0].getMessage()
    short = TrainingSafety(SimpleNamespace(vocab_size=262), stall_warning_steps=20)
    _steps(short, _trainer(max_steps=6), [(1.0, 4.0)] + [(0.0, chance)] * 3)  # a short run: half its steps
    assert caplog.records[-1].getMessage().startswith("training stalled at steps 2-4")


def test_a_skipped_mixed_precision_step_is_not_a_divergence_but_a_nan_loss_is():
    trainer = _trainer(max_steps=10)
    safety = TrainingSafety(SimpleNamespace(vocab_size=262), stall_warning_steps=20)
    trainer.accelerator.optimizer_step_was_skipped = True  # fp16's loss scaler: inf gradients, no update
    _steps(safety, trainer, [(math.inf, 5.0)])
    trainer.accelerator.optimizer_step_was_skipped = False
    with pytest.raises(TrainingDiverged, match="at step 2: the gradient norm is not finite"):
        _steps(safety, trainer, [(math.inf, 5.0)])
    with pytest.raises(TrainingDiverged, match="at step 3: task_loss is not finite"):
        _steps(safety, trainer, [(math.inf, math.nan)])  # the loss is named first: it is the cause


def test_without_a_gradient_norm_the_weights_are_checked_before_a_save():
    trainer = _trainer(max_steps=10)
    trainer.model = torch.nn.Linear(2, 2)
    safety = TrainingSafety(SimpleNamespace(vocab_size=262), stall_warning_steps=20)
    trainer.control.should_save = True
    safety.record(SimpleNamespace(task_loss=torch.tensor(5.0)), {}, world_size=1)
    trainer.state.global_step = 1
    safety.check(trainer, None)  # --max_grad_norm 0: no gradient norm
    with torch.no_grad():
        trainer.model.bias[0] = math.inf
    trainer.state.global_step = 2
    with pytest.raises(TrainingDiverged, match="at step 2: a trainable weight is not finite"):
        safety.check(trainer, None)


@pytest.mark.parametrize("save_total_limit", ["1", "2"])
def test_an_overflowing_run_stops_at_its_first_nan_step_and_keeps_the_checkpoint_before(
    tiny_model_dir, tmp_path, save_total_limit
):
    rows = write_rows(tmp_path / "train.json")
    out = tmp_path / "out"
    save = ["--save_steps", "1", "--save_total_limit", save_total_limit]
    with pytest.raises(TrainingDiverged) as stopped:
        run_training(tiny_model_dir, rows, out, "--learning_rate", OVERFLOWING_RATE, *MODE, *save)
    assert (stopped.value.step, stopped.value.what) == (2, "alignment_loss")
    assert str(stopped.value).startswith("training diverged at step 2: alignment_loss is not finite")
    assert f"the last checkpoint is {out / 'checkpoint-1'}" in str(stopped.value)
    assert "--learning_rate (now 1e+20)" in str(stopped.value)
    # Nothing of step 2 was saved: the result, and no checkpoint that rotation would prefer to step 1's.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-1"]
    adapter = load_file(out / "checkpoint-1/adapter_model.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in adapter.values())
    logged = json.loads((out / "checkpoint-1/trainer_state.json").read_text())["log_history"]
    assert [(h["step"], math.isfinite(h["grad_norm"]), math.isfinite(h["task_loss"])) for h in logged] == [
        (1, True, True)
    ]


def test_a_saturated_run_is_warned_once_and_trains_to_the_end(tiny_model_dir, tmp_path, caplog):
    rows = write_rows(tmp_path / "train.json")
    trainer = run_training(tiny_model_dir, rows, tmp_path / "out", "--learning_rate", SATURATING_RATE, *MODE)
    logged = [h for h in trainer.state.log_history if "loss" in h]
    # The recorded losses from step 2 on are chance, recomputed here: ln V and ln(4 pairs).
    vocabulary = len(byte_level_tokenizer())
    assert [h["grad_norm"] for h in logged[1:]] == [0.0] * 5
    assert [h.get("task_loss", h.get("alignment_loss")) for h in logged[1:]] == pytest.approx(
        [math.log(4), math.log(vocabulary)] * 2 + [math.log(4)], abs=1e-5
    )
    warnings = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(
        "training stalled at steps 2-4: the gradient norm is 0 and task_loss and alignment_loss sit exactly at chance"
    )
    assert (tmp_path / "out/adapter_model.safetensors").is_file()  # a warning, not a stop


def _script(tmp_path, model_dir, *extra):
    saving = ["--save_strategy", "steps", "--save_steps", "1", "--save_total_limit", "1"]
    return script_argv(model_dir, tmp_path, "--max_steps", "6", *saving, *extra)


def _errors(stderr):
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("run_clm_lora: error: ")]


@pytest.mark.slow
def test_the_script_stops_a_diverged_run_with_one_line_and_exit_code_3(tiny_model_dir, tmp_path):
    command = [sys.executable, *_script(tmp_path, tiny_model_dir, "--learning_rate", OVERFLOWING_RATE)]
    result = subprocess.run(command, cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 3
    errors = _errors(result.stderr)
    assert len(errors) == 1 and errors[0].startswith("run_clm_lora: error: training diverged at step 2: alignment_loss")
    assert result.stderr.rstrip().endswith(errors[0])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["checkpoint-1"]


@pytest.mark.slow
def test_an_infinite_loss_on_one_rank_stops_both_ranks_at_that_step(tiny_model_dir, tmp_path):
    # Rank 1's loss of its 3rd training forward (step 3, a task step) is inf, its gradient finite: rank 0's own
    # loss and the all-reduced gradient norm are finite, so only the all-reduced flag can stop rank 0.
    command = torchrun_command(
        "--monitor_interval",
        "5",  # let both ranks exit by themselves before the agent ends the other
        str(REPO / "tests/training/diverging_worker.py"),
        *_script(tmp_path, tiny_model_dir)[2:],
    )
    env = cpu_env(INF_ON_RANK="1", INF_AT_CALL="3", PROBE_DIR=str(tmp_path))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks == [{"exit": 3, "step": 3}, {"exit": 3, "step": 3}]
    errors = [line for line in result.stderr.splitlines() if line.startswith("run_clm_lora: error: ")]
    assert len(errors) == 1 and errors[0].startswith("run_clm_lora: error: training diverged at step 3: task_loss")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["checkpoint-2"]
    adapter = load_file(Path(tmp_path, "out/checkpoint-2/adapter_model.safetensors"))
    assert all(bool(torch.isfinite(t).all()) for t in adapter.values())
