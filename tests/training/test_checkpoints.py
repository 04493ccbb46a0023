"""Outputs never lost or mixed, checkpoints visible only when complete, and resuming never runs code from a file."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from scripts import check_output_dir as check_output_dir_script
from tests.support import REPO
from tests.support.training import run_training, write_rows
from transformers_align.cli import exit_on_user_error
from transformers_align.tiny import build_tiny_model
from transformers_align.training.checkpoints import (
    LIVE_LOG_VARIABLE,
    REPORT_FILE,
    RUN_ARGS_FILE,
    STAGING_DIR,
    OutputFolderError,
    ResumeArguments,
    check_deepspeed_files,
    checkpoints_in,
    prepare_output,
)

SIX_STEPS = ["--alternate_training", "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3"]

KILL_AT_STEP_6 = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from transformers_align.training.trainer import AlignmentTrainer
save_rng_state = AlignmentTrainer._save_rng_state

def killed_mid_save(self, output_dir):  # the adapter and optimizer are written, the rest is not
    if self.state.global_step == 6:
        os.kill(os.getpid(), signal.SIGKILL)
    save_rng_state(self, output_dir)

AlignmentTrainer._save_rng_state = killed_mid_save
from tests.support.training import run_training
run_training(*sys.argv[1:4], *sys.argv[4:])
"""


@pytest.fixture(scope="module")
def straight(tiny_model_dir, tmp_path_factory):
    """An uninterrupted 6-step run that saves checkpoint-3 and checkpoint-6."""
    root = tmp_path_factory.mktemp("straight")
    data = write_rows(root / "train.json")
    return data, run_training(tiny_model_dir, data, root / "out", *SIX_STEPS), root / "out"


def logged_losses(trainer):
    return [
        (h["step"], h["loss"], h.get("task_loss"), h.get("alignment_loss"))
        for h in trainer.state.log_history
        if "loss" in h
    ]


def test_kill_during_a_checkpoint_write_leaves_nothing_auto_picks_and_resume_is_exact(
    tiny_model_dir, straight, tmp_path, caplog
):
    data, reference, _ = straight
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-c",
        KILL_AT_STEP_6.format(repo=str(REPO)),
        str(tiny_model_dir),
        str(data),
        str(out),
        *SIX_STEPS,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    killed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (out / STAGING_DIR / "checkpoint-6" / "adapter_model.safetensors").is_file()  # the half-written save
    assert not (out / "checkpoint-6").exists()
    assert checkpoints_in(out) == [out / "checkpoint-3"]
    assert get_last_checkpoint(str(out)) == str(out / "checkpoint-3")  # the stock search agrees

    with caplog.at_level("WARNING"):
        resumed = run_training(tiny_model_dir, data, out, *SIX_STEPS, "--resume_from_checkpoint", "auto")
    assert f"resuming from {out / 'checkpoint-3'}" in caplog.text
    assert logged_losses(resumed) == logged_losses(reference)
    a, b = load_file(out / "adapter_model.safetensors"), load_file(straight[2] / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [p.name for p in checkpoints_in(out)] == ["checkpoint-3", "checkpoint-6"]
    assert not (out / STAGING_DIR).exists()


def test_non_empty_output_folder_is_refused_before_the_model_loads(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="output folder .* is not empty"):
        run_training(tmp_path / "no-such-model", write_rows(tmp_path / "train.json"), out, "--max_steps", "1")
    assert (out / "notes.txt").read_text() == "mine"


def test_the_script_refuses_a_used_folder_in_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"an earlier run")
    env = dict(os.environ, MODEL_PATH="tiny", TINY_MODEL_DIR=str(tmp_path / "tiny"), OUTDIR=str(out))
    script = str(REPO / "scripts/train_with_alignment.sh")
    result = subprocess.run(["bash", script], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: output folder {out} is not empty: choose another folder, resume from it "
        "(--resume_from_checkpoint auto; RESUME=auto for the scripts) "
        "or overwrite it (--overwrite_output_dir True; OVERWRITE=1 for the scripts)"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["adapter_model.safetensors"]
    assert (out / "adapter_model.safetensors").read_bytes() == b"an earlier run"


def _training_args(output_dir, **values):
    return TrainingArguments(str(output_dir), do_train=True, use_cpu=True, report_to=[], **values)


def test_resume_checks_the_run_arguments_and_the_folder(straight, tmp_path, caplog):
    _, _, out = straight
    saved = json.loads((out / "checkpoint-3" / RUN_ARGS_FILE).read_text())
    changed = json.loads(json.dumps(saved))
    changed["training"]["seed"], changed["training"]["learning_rate"] = 4, 2e-3
    with pytest.raises(
        OutputFolderError,
        match=r"other run arguments \(training.learning_rate: 0.001 -> 0.002; "
        r"training.seed: 3 -> 4\): pass --resume_with_changed_arguments True",
    ):
        prepare_output(_training_args(out, resume_from_checkpoint="auto"), changed)
    with caplog.at_level("WARNING"):
        allowed = prepare_output(_training_args(out, resume_from_checkpoint="auto"), changed, ResumeArguments(True))
    assert allowed == str(out / "checkpoint-6") and "resuming anyway" in caplog.text
    by_path = _training_args(out, resume_from_checkpoint=str(out / "checkpoint-3"))
    assert prepare_output(by_path, saved) == str(out / "checkpoint-3")
    with pytest.raises(OutputFolderError, match=r"checkpoint-33: not a complete checkpoint \(no such folder\)"):
        prepare_output(_training_args(out, resume_from_checkpoint=str(out / "checkpoint-33")), saved)
    with caplog.at_level("WARNING"):
        assert prepare_output(_training_args(tmp_path / "new", resume_from_checkpoint="auto"), saved) is None
    assert "no complete checkpoint in" in caplog.text


def test_overwrite_leaves_nothing_of_the_previous_run(straight, tmp_path, monkeypatch):
    """A finished run's folder, with the recipe's log and report beside it: an overwrite clears all of it."""
    out = tmp_path / "out"
    shutil.copytree(straight[2], out)
    (out / "train.log").write_text("the earlier run's log\n")
    (out / REPORT_FILE).write_text('{"aligned": true}')
    assert {"adapter_model.safetensors", "checkpoint-6", "trainer_state.json", "train_results.json"} <= {
        p.name for p in out.iterdir()
    }
    monkeypatch.delenv(LIVE_LOG_VARIABLE, raising=False)
    prepare_output(_training_args(out, overwrite_output_dir=True), {})
    assert list(out.iterdir()) == []


def test_overwrite_keeps_the_log_the_launcher_is_writing(straight, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(straight[2], out)
    (out / "train.log").write_text("this run's first lines\n")
    monkeypatch.setenv(LIVE_LOG_VARIABLE, str(out / "train.log"))
    prepare_output(_training_args(out, overwrite_output_dir=True), {})
    assert [p.name for p in out.iterdir()] == ["train.log"]


def test_overwrite_of_a_folder_with_a_users_file_is_refused_and_removes_nothing(straight, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(straight[2], out)
    (out / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(OutputFolderError, match=r"holds notes.txt, which no training run writes.*nothing was removed"):
        prepare_output(_training_args(out, overwrite_output_dir=True), {})
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


class _CreatesMarker:
    """Unpickling this calls ``open(path, "w")``: what a malicious checkpoint could do with any callable."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_crafted_rng_state_is_refused_and_runs_nothing(tiny_model_dir, straight, tmp_path):
    data, _, out = straight
    checkpoint = tmp_path / "downloaded" / "checkpoint-3"
    shutil.copytree(out / "checkpoint-3", checkpoint)
    marker = tmp_path / "pwned"
    rng_file = checkpoint / "rng_state.pth"
    torch.save(
        {
            "python": None,
            "numpy": np.random.get_state(),
            "cpu": torch.get_rng_state(),
            "payload": _CreatesMarker(marker),
        },
        rng_file,
    )
    assert "io.open" in torch.serialization.get_unsafe_globals_in_checkpoint(str(rng_file))  # it would run code
    with pytest.raises(OutputFolderError, match=f"refused to read {rng_file}: it holds more than an RNG state"):
        run_training(tiny_model_dir, data, tmp_path / "out", *SIX_STEPS, "--resume_from_checkpoint", str(checkpoint))
    assert not marker.exists()
    assert torch.load is torch.serialization.load  # no process-wide patch left behind


def test_crafted_deepspeed_file_is_refused_before_deepspeed_reads_it(tmp_path):
    marker, crafted = tmp_path / "pwned", tmp_path / "checkpoint-3" / "global_step3" / "mp_rank_00_model_states.pt"
    crafted.parent.mkdir(parents=True)
    torch.save({"module": {}, "ds_version": "0.19.8", "payload": _CreatesMarker(marker)}, crafted)
    with pytest.raises(OutputFolderError, match=f"refused to resume from {crafted}: .* names io.open"):
        check_deepspeed_files(crafted.parent.parent)
    assert not marker.exists()


def test_tiny_model_builder_never_replaces_a_folder_it_did_not_make(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"the user's weights")
    with pytest.raises(FileExistsError, match="is not empty and holds no tiny model"):
        build_tiny_model(folder)
    assert (folder / "model.safetensors").read_bytes() == b"the user's weights"
    built = build_tiny_model(tmp_path / "tiny", seed=0)
    first = load_file(built / "model.safetensors")
    build_tiny_model(built, seed=1)  # its own folder, another recipe: rebuilt in place
    assert not torch.equal(next(iter(first.values())), next(iter(load_file(built / "model.safetensors").values())))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny", "weights"]  # no staging folders left


def test_best_model_selection_sees_the_published_checkpoints(tiny_model_dir, tmp_path):
    data, out = write_rows(tmp_path / "train.json"), tmp_path / "out"
    trainer = run_training(
        tiny_model_dir,
        data,
        out,
        *SIX_STEPS,
        "--validation_file",
        str(data),
        "--do_eval",
        "--max_eval_samples",
        "8",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "3",
        "--load_best_model_at_end",
        "True",
        "--metric_for_best_model",
        "eval_loss",
        "--save_total_limit",
        "1",
    )
    best = trainer.state.best_model_checkpoint
    assert best in {str(out / "checkpoint-3"), str(out / "checkpoint-6")} and os.path.isdir(best)
    for checkpoint in checkpoints_in(out):  # what a resumed run would read
        assert json.loads((checkpoint / "trainer_state.json").read_text())["best_model_checkpoint"] == best
    assert not (out / STAGING_DIR).exists()


@pytest.mark.parametrize(
    "run_flags,allowed",
    [([], False), (["--overwrite_output_dir", "True"], True), (["--resume_from_checkpoint", "auto"], True)],
)
def test_the_folder_pre_check_takes_the_run_flags_the_launcher_passes(tmp_path, run_flags, allowed, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"an earlier run")
    if allowed:
        check_output_dir_script.main(["--output_dir", str(out), *run_flags])
    else:
        with pytest.raises(SystemExit) as exit_info:  # as the script runs from the command line
            exit_on_user_error(lambda: check_output_dir_script.main(["--output_dir", str(out), *run_flags]))
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.startswith(f"error: output folder {out} is not empty")
    assert sorted(p.name for p in out.iterdir()) == ["adapter_model.safetensors"]


def test_a_setting_added_after_the_checkpoint_was_saved_counts_as_unchanged_at_its_default():
    from transformers_align.modeling.consistency import CONSISTENCY_DIRECTIONS
    from transformers_align.objectives.consistency import ConsistencySettings
    from transformers_align.training.checkpoints import changed_arguments

    default = ConsistencySettings().consistency_direction
    other = next(direction for direction in CONSISTENCY_DIRECTIONS if direction != default)
    saved = {"alignment": {"additional_loss_layer": 2}}  # written before the consistency objective existed
    assert changed_arguments(saved, {"alignment": {"additional_loss_layer": 2, "consistency_direction": default}}) == []
    assert changed_arguments(saved, {"alignment": {"additional_loss_layer": 2, "consistency_direction": other}}) == [
        f"alignment.consistency_direction: None -> {other!r}"
    ]
    assert changed_arguments(saved, {"alignment": {"additional_loss_layer": 3, "consistency_direction": default}}) == [
        "alignment.additional_loss_layer: 2 -> 3"
    ]
