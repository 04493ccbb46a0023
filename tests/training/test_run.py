"""The training pipeline (training/run.py, with schedule.py and trainer.py): schedule, per-loss logging, resume
equivalence, data validation, shell scripts."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.support import REPO
from tests.support.training import PAIRS, assert_same_run, run_training, write_lora_config, write_rows
from transformers_align.data.features import AlignmentCollator, FeatureOptions, read_rows, tokenize_rows
from transformers_align.data.jsonl import DataFormatError
from transformers_align.data.streams import build_streams
from transformers_align.training.arguments import AlignmentTrainingArguments
from transformers_align.training.schedule import ALIGNMENT, TASK, Schedule


def test_alternation_follows_the_global_micro_step():
    assert [Schedule("alternate").objectives(s) for s in range(4)] == [{TASK}, {ALIGNMENT}, {TASK}, {ALIGNMENT}]
    assert Schedule("joint").objectives(7) == {TASK, ALIGNMENT}
    with pytest.raises(ValueError, match="alternate, joint, task, alignment"):
        Schedule("both")
    with pytest.raises(ValueError, match="alternate mode only"):
        Schedule("joint", alignment_steps_per_task_step=2)


@pytest.mark.parametrize("ratio", [1, 2, 3])
def test_batches_drawn_before_a_step_count_the_steps_of_each_objective(ratio):
    # Against a plain count over the micro-steps before m: the index of each stream's next batch.
    schedule = Schedule("alternate", alignment_steps_per_task_step=ratio)
    assert [schedule.objectives(m) for m in range(ratio + 1)] == [{TASK}] + [{ALIGNMENT}] * ratio
    for m in range(20):
        before = [schedule.objectives(k) for k in range(m)]
        assert schedule.batches_before(m, "task") == sum(TASK in o for o in before)
        assert schedule.batches_before(m, "pairs") == sum(ALIGNMENT in o for o in before)


def test_trainer_alternates_micro_batches_and_logs_true_means(tiny_model_dir, tmp_path):
    trainer = run_training(
        tiny_model_dir,
        write_rows(tmp_path / "train.json"),
        tmp_path / "out",
        "--alternate_training",
        "--gradient_accumulation_steps",
        "2",
        "--max_steps",
        "3",
    )
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert len(history) == 3
    for entry in history:
        # each optimizer step holds one task and one alignment micro-batch; each mean is over its own micro-batch
        assert entry["task_loss"] > 0 and entry["alignment_loss"] > 0
        assert entry["loss"] == pytest.approx((entry["task_loss"] + entry["alignment_loss"]) / 2, rel=1e-3)
    from peft import AutoPeftModelForCausalLM

    loaded = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "out").state_dict()
    trained = {name: value for name, value in trainer.model.state_dict().items() if "lora_" in name}
    assert trained and all(torch.equal(loaded[name], value) for name, value in trained.items())
    # The schedule travels with the saved training arguments (AlignmentTrainingArguments), not only in the run record.
    saved_args = torch.load(tmp_path / "out/training_args.bin", weights_only=False)  # written by this test's run
    assert isinstance(saved_args, AlignmentTrainingArguments) and saved_args.schedule().mode == "alternate"
    saved = json.loads((tmp_path / "out/alignment_run_args.json").read_text())
    assert saved["training_mode"] == "alternate" and saved["alignment"]["additional_loss_layer"] == 2


def test_task_only_mode_logs_no_alignment_loss(tiny_model_dir, tmp_path):
    trainer = run_training(
        tiny_model_dir,
        write_rows(tmp_path / "train.json", pairs=False),
        tmp_path / "out",
        "--only_train_language_modeling",
        "--max_steps",
        "2",
    )
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert all("alignment_loss" not in h and h["task_loss"] == pytest.approx(h["loss"], rel=1e-3) for h in history)


@pytest.mark.parametrize("pairs_from", ["rows", "alignment_file"])
def test_resume_continues_exactly(tiny_model_dir, tmp_path, pairs_from):
    # A 6-step run saves checkpoint-3; a second run resumes from it as an interrupted run would. With a separate
    # pairs file the two streams have different sizes and epochs, and batches are length-grouped.
    data = write_rows(tmp_path / "train.json", pairs=pairs_from == "rows")
    common = ["--alternate_training", "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3"]
    if pairs_from == "alignment_file":
        pairs = tmp_path / "pairs.tsv"
        pairs.write_text("".join(f"{a} {'!' * i}\t{b} {i}\n" for i in range(9) for a, b in PAIRS[:1]), encoding="utf-8")
        common += ["--alignment_file", str(pairs), "--group_by_length", "True", "--per_device_train_batch_size", "2"]
    straight = run_training(tiny_model_dir, data, tmp_path / "straight", *common)
    resumed = run_training(
        tiny_model_dir,
        data,
        tmp_path / "resumed",
        *common,
        "--resume_from_checkpoint",
        str(tmp_path / "straight/checkpoint-3"),
    )

    def losses(trainer):
        return [
            (h["step"], h["loss"], h.get("task_loss"), h.get("alignment_loss"), h.get("pairs_epoch"))
            for h in trainer.state.log_history
            if "loss" in h
        ]

    assert [step for step, *_ in losses(resumed)] == [1, 2, 3, 4, 5, 6]  # steps 1-3 come from the checkpoint's state
    assert losses(resumed) == losses(straight)
    from safetensors.torch import load_file

    a, b = (
        load_file(tmp_path / "straight/adapter_model.safetensors"),
        load_file(tmp_path / "resumed/adapter_model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("mode", ["task", "joint"])
def test_gradient_accumulation_equals_the_doubled_batch(tiny_model_dir, tmp_path, mode):
    # The task loss is the mean over every scored token of the optimizer step, so 2 accumulated micro-batches of 4 rows
    # equal one batch of 8 (rows of different labelled lengths). InfoNCE's negatives are its micro-batch's pairs, so the
    # alignment loss does depend on the micro-batch: in joint mode it is logged but weighted 0 here.
    data = write_rows(tmp_path / "train.json", n=16)
    common = [
        "--training_mode",
        mode,
        "--max_steps",
        "3",
        "--lora_config",
        str(write_lora_config(tmp_path / "lora.json")),
        "--contrastive_loss_weight",
        "0",
    ]
    accumulated = run_training(
        tiny_model_dir,
        data,
        tmp_path / "accumulated",
        *common,
        "--per_device_train_batch_size",
        "4",
        "--gradient_accumulation_steps",
        "2",
    )
    doubled = run_training(tiny_model_dir, data, tmp_path / "doubled", *common, "--per_device_train_batch_size", "8")

    def losses(trainer):
        return [(h["task_loss"], None) for h in trainer.state.log_history if "loss" in h]

    assert_same_run(tmp_path / "accumulated", tmp_path / "doubled", losses(accumulated), losses(doubled))
    # step 1 against the stock model (LoRA starts as the identity): summed token cross-entropy over all
    # labels / their count
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    batch = accumulated._scheduled
    rows = [row for m in (0, 1) for row in batch.streams.task.rows(batch.global_batch("task", m))]
    with torch.no_grad():
        total = sum(
            float(model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]])).loss)
            * sum(label != -100 for label in r["labels"][1:])
            for r in rows
        )
    assert losses(accumulated)[0][0] == pytest.approx(
        total / sum(sum(lb != -100 for lb in r["labels"][1:]) for r in rows), abs=1e-5
    )


def test_alignment_mode_without_pairs_is_a_clear_error(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="needs parallel pairs"):
        run_training(
            tiny_model_dir, write_rows(tmp_path / "train.json", pairs=False), tmp_path / "out", "--alternate_training"
        )


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"prefix": "a", "text": "b"}\n{"prefix": "a", "text": \n', r"train.json:2: malformed JSON"),
        ('{"prefix": "a", "text": "b"}\n{"prefix": "a"}\n', r"train.json:2: missing field 'text'"),
        ('{"prefix": "a", "text": 3.5e}\n', r"train.json:1: malformed JSON"),
        ('{"prefix": "a", "text": ["x"]}\n', r"train.json:1: field 'text' must be a string"),
    ],
)
def test_bad_task_records_name_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "train.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=message):
        read_rows([path], "task")


def test_bad_tsv_and_afp_records(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("ok\tfine\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"pairs.tsv:2: expected 2 tab-separated columns, found 1"):
        read_rows([tsv], "pairs")
    afp = tmp_path / "afp.json"
    afp.write_text('{"sent0": "a", "sent1": "b", "clm_text": "abc", "clm_prompt_len": 9}\n', encoding="utf-8")
    with pytest.raises(
        DataFormatError, match=r"afp.json:1: field 'clm_prompt_len' must be an integer between 0 and len\(clm_text\)=3"
    ):
        read_rows([afp], "afp")


def test_empty_sentences_are_skipped_per_stream_and_long_sequences_truncated_with_counts(tmp_path, tokenizer, caplog):
    path = tmp_path / "train.json"
    rows = [
        {"prefix": "p", "text": "t", "text_parallel_0": "", "text_parallel_1": "x"},
        {"prefix": "p", "text": "t" * 300, "text_parallel_0": "y" * 50, "text_parallel_1": "x"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with caplog.at_level("WARNING"):
        streams = build_streams(
            [path], [], ["pairs", "task"], tokenizer, FeatureOptions(block_size=64, pair_max_length=16)
        )
    # the empty sentence costs its pair only: the record's task example is kept
    assert (
        len(streams.task) == 2
        and len(streams.pairs) == 1
        and "skipped 1 record(s): empty text_parallel_0" in caplog.text
    )
    assert (
        sorted(streams.task.lengths) == [3, 64]
        and streams.pairs.rows([0])[0]["input_ids_parallel_0"] == [256] + [ord("y")] * 15
    )
    assert "1 task sequences truncated" in caplog.text and "1 pairs with a sentence truncated" in caplog.text


def test_prompt_is_masked_and_collator_pads_each_stream_to_its_own_length(tokenizer):
    rows = [
        {"prefix": "ab", "text": "cd", "text_parallel_0": "x", "text_parallel_1": "hello world"},
        {"prefix": "abcdef", "text": "g", "text_parallel_0": "xyz", "text_parallel_1": "hi"},
    ]
    features = tokenize_rows(tokenizer, rows, FeatureOptions(block_size=32))
    assert (
        features[0]["labels"] == [-100, -100, -100] + tokenizer("cd", add_special_tokens=False).input_ids
    )  # BOS + "ab"
    batch = AlignmentCollator(tokenizer.pad_token_id, pad_to_multiple_of=None)(features)
    assert batch["input_ids"].shape == (2, 8) and batch["input_ids_parallel_0"].shape == (2, 4)
    assert batch["input_ids_parallel_1"].shape == (2, 12) and batch["attention_mask_parallel_1"].sum().item() == 12 + 3
    assert (batch["labels"][0, 5:] == -100).all()


@pytest.mark.parametrize(
    "script, losses",
    [("train_with_alignment.sh", ("task_loss", "alignment_loss")), ("train_baseline.sh", ("task_loss",))],
)
def test_shell_scripts_run_the_embedded_default(script, losses, tmp_path):
    env = dict(
        os.environ, MODEL_PATH="tiny", OUTDIR=str(tmp_path / "out"), TINY_MODEL_DIR=str(tmp_path / "tiny"), EPOCHS="1"
    )
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / script)], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in losses:
        assert f"'{name}'" in result.stdout
    assert "%|" in result.stdout  # the progress bar
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "tiny"), tmp_path / "out")
    assert sum(p.numel() for n, p in model.named_parameters() if "lora_" in n) > 0
    if (
        script == "train_with_alignment.sh"
    ):  # the trained adapter feeds MASSIVE inference, whose output feeds evaluation
        predictions, metrics = tmp_path / "preds.jsonl", tmp_path / "metrics.json"
        for command in (
            [
                "scripts.run_inference_massive",
                "--model-name",
                str(tmp_path / "tiny"),
                "--peft-model-id",
                str(tmp_path / "out"),
                "--lang",
                "ja",
                "--partition",
                "test",
                "--max-examples",
                "4",
                "--max-new-tokens",
                "8",
                "--output-file",
                str(predictions),
            ],
            [
                "scripts.eval_massive",
                "--pred-slots-file",
                str(predictions),
                "--lang",
                "ja",
                "--partition",
                "test",
                "--max-examples",
                "4",
                "--output-json",
                str(metrics),
            ],
        ):
            step = subprocess.run(
                [sys.executable, "-m", *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
            )
            assert step.returncode == 0, step.stderr[-3000:]
        assert len(predictions.read_text(encoding="utf-8").splitlines()) == 4
        scores = json.loads(metrics.read_text())
        assert set(scores) >= {"slot_micro_f1", "exact_match", "intent_accuracy", "malformed"}
        assert (scores["counts"]["scored"], scores["counts"]["missing"]) == (4, 0)


def test_malformed_adapter_config_names_the_file_and_line(tiny_model_dir, tmp_path):
    bad = tmp_path / "lora.json"
    bad.write_text('{\n  "r": 8,\n  "lora_alpha": ,\n}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"lora.json:3: malformed JSON"):
        run_training(
            tiny_model_dir,
            write_rows(tmp_path / "train.json", pairs=False),
            tmp_path / "out",
            "--only_train_language_modeling",
            "--lora_config",
            str(bad),
        )
