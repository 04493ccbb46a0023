"""The consistency objective in training: parallel task rows (prefix, text, prefix_translated) feed the task and the
parallel task streams; the schedule composes it with the task by name; the logged consistency loss is the token
mean of the optimizer step, so gradient accumulation and two torchrun ranks equal one process on the whole batch."""

import json
import subprocess
from types import SimpleNamespace

import pytest
import torch

from tests.support import REPO
from tests.support.processes import cpu_env, torchrun_command
from tests.support.training import PREFIX, assert_same_run, run_training, script_argv, write_lora_config
from transformers_align.data.features import FeatureOptions, read_rows, tokenize_rows
from transformers_align.data.massive import format_target, parallel_training_records, read_partition
from transformers_align.data.records import PARALLEL_TASK, TASK
from transformers_align.data.streams import build_streams
from transformers_align.training.safety import TrainingDiverged, TrainingSafety

ALARM_FR = "règle un réveil pour {}"


def write_parallel_rows(path, n=16):
    """Task rows whose translated prompts and completions differ in length (token means differ from row means)."""
    rows = [
        {
            "prefix": PREFIX.format(f"set an alarm for {i}"),
            "prefix_translated": PREFIX.format(ALARM_FR.format(i) + " s'il te plaît" * (i % 2)),
            "text": f"time: {i}{' and a half' * (i % 3)}<|eot_id|>",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _logged(output_dir):
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [(h.get("task_loss"), h.get("consistency_loss")) for h in history if "loss" in h]


def test_parallel_task_rows_end_both_sides_in_the_same_target_tokens(tmp_path, tokenizer):
    path = write_parallel_rows(tmp_path / "rows.jsonl", n=4)
    features = tokenize_rows(tokenizer, read_rows([str(path)]), FeatureOptions(block_size=128))
    for feature, row in zip(features, map(json.loads, path.read_text().splitlines())):
        for side, prompt in ((0, row["prefix"]), (1, row["prefix_translated"])):
            ids, labels = feature[f"input_ids_consistency_{side}"], feature[f"labels_consistency_{side}"]
            prompt_ids = tokenizer(prompt).input_ids
            target = tokenizer(row["text"], add_special_tokens=False).input_ids
            assert ids == prompt_ids + target
            assert labels == [-100] * len(prompt_ids) + target
        assert feature["input_ids"] == feature["input_ids_consistency_0"]  # the task part is side 0
    streams = build_streams([str(path)], [], [TASK, PARALLEL_TASK], tokenizer, FeatureOptions(block_size=128))
    assert set(streams.streams) == {TASK, PARALLEL_TASK}
    counts = streams.streams[PARALLEL_TASK].num_labels
    assert list(counts) == [
        len(tokenizer(r["text"], add_special_tokens=False).input_ids)
        for r in map(json.loads, path.read_text().splitlines())
    ]


def test_massive_parallel_rows_pair_records_by_id_and_keep_the_source_target(tokenizer):
    english = read_partition([REPO / "data_example/massive/en-US.jsonl"], "train")
    french = read_partition([REPO / "data_example/massive/fr-FR.jsonl"], "train")
    rows = parallel_training_records(english, french[1:], tokenizer)  # the first id has no translation
    by_id = {record.id: record for record in french}
    assert len(rows) == len(english) - 1
    for row, source in zip(rows, [r for r in english if r.id != french[0].id]):
        assert source.utt in row["prefix"] and by_id[source.id].utt in row["prefix_translated"]
        assert row["text"] == format_target(source.slots, source.intent) + tokenizer.eos_token


def test_accumulated_micro_batches_equal_one_batch_and_eval_reports_each_objective(tmp_path, tiny_model_dir):
    rows = write_parallel_rows(tmp_path / "train.json")
    lora = write_lora_config(tmp_path / "lora.json")
    common = ["--lora_config", str(lora), "--max_steps", "3", "--training_mode", "joint"]
    common += ["--objectives", "task,consistency", "--consistency_direction", "symmetric"]
    common += ["--validation_file", str(rows), "--do_eval"]
    whole = run_training(tiny_model_dir, rows, tmp_path / "whole", *common)
    halves = run_training(
        tiny_model_dir,
        rows,
        tmp_path / "halves",
        *common,
        "--per_device_train_batch_size",
        "2",
        "--gradient_accumulation_steps",
        "2",
    )
    assert all(task is not None and consistency is not None for task, consistency in _logged(tmp_path / "whole"))
    assert_same_run(tmp_path / "whole", tmp_path / "halves", _logged(tmp_path / "whole"), _logged(tmp_path / "halves"))
    metrics = [trainer.evaluate() for trainer in (whole, halves)]
    for key in ("eval_task_loss", "eval_consistency_loss"):
        assert metrics[0][key] == pytest.approx(metrics[1][key], abs=1e-5)
    run_args = json.loads((tmp_path / "whole" / "alignment_run_args.json").read_text())  # saved with the run
    assert run_args["alignment"]["consistency_direction"] == "symmetric"
    assert whole.model.get_base_model().config.consistency_direction == "symmetric"  # and in the model config


@pytest.mark.slow  # two torchrun processes and one single-process run
def test_two_torchrun_processes_equal_one_process(tmp_path, tiny_model_dir, datasets_cache):
    rows = write_parallel_rows(tmp_path / "parallel.json")
    lora = write_lora_config(tmp_path / "lora.json")
    extra = ["--lora_config", str(lora), "--max_steps", "3", "--learning_rate", "1e-3", "--seed", "3"]
    extra += ["--training_mode", "alternate", "--objectives", "task,consistency", "--train_file", str(rows)]
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
    run_training(tiny_model_dir, rows, tmp_path / "single", *extra, "--per_device_train_batch_size", "4")
    assert any(consistency is not None for _, consistency in _logged(tmp_path / "out"))
    assert_same_run(tmp_path / "out", tmp_path / "single", _logged(tmp_path / "out"), _logged(tmp_path / "single"))


def test_a_nan_consistency_loss_stops_the_run_and_a_zero_one_counts_as_chance():
    """The safety checks every objective: consistency's chance is 0 (outputs that ignore the input agree)."""
    trainer = SimpleNamespace(
        state=SimpleNamespace(global_step=1, max_steps=4),
        control=SimpleNamespace(should_save=False),
        accelerator=SimpleNamespace(num_processes=1, optimizer_step_was_skipped=False),
        args=SimpleNamespace(output_dir=None, learning_rate=1.0, max_grad_norm=1.0),
        is_world_process_zero=lambda: True,
    )
    safety = TrainingSafety(SimpleNamespace(vocab_size=262), stall_warning_steps=2)
    for step in (1, 2):
        trainer.state.global_step = step
        safety.record(SimpleNamespace(objective_losses={"consistency": torch.tensor(0.0)}), {}, world_size=1)
        safety.check(trainer, torch.tensor(0.0))
    assert safety.stall_warned and safety.stalled_objectives == {"consistency_loss"}
    trainer.state.global_step = 3
    safety.record(SimpleNamespace(objective_losses={"consistency": torch.tensor(float("nan"))}), {}, world_size=1)
    with pytest.raises(TrainingDiverged, match="at step 3: consistency_loss is not finite"):
        safety.check(trainer, torch.tensor(1.0))
