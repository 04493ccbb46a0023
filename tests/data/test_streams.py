"""Two streams, one schedule: every pair used, rank shards, length grouping, the on-disk cache, hard
negatives, streaming (data/streams.py and training/batches.py)."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.support.training import run_training, write_rows
from transformers_align.data import streams as streams_module
from transformers_align.data.features import AlignmentCollator, FeatureOptions
from transformers_align.data.streams import build_streams
from transformers_align.modeling import patch_model
from transformers_align.training.arguments import AlignmentTrainingArguments
from transformers_align.training.batches import ScheduledBatches
from transformers_align.training.schedule import Schedule
from transformers_align.training.trainer import AlignmentTrainer


def write_pairs(path, n):
    path.write_text("".join(f"source {i} {'x' * (i % 7)}\ttarget {i}\n" for i in range(n)), encoding="utf-8")
    return path


def test_every_pair_and_every_task_row_is_used_once_per_epoch_of_its_own_stream(tiny_model_dir, tmp_path):
    # 40 task rows and 198 pairs, alternate mode, batch 4: mid-align's row joining used 40 pairs; here the pair stream
    # runs its own epochs, so the first ceil(198/4) = 50 alignment steps see all 198 pairs.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    streams = build_streams(
        [write_rows(tmp_path / "task.json", n=40, pairs=False)],
        [write_pairs(tmp_path / "pairs.tsv", 198)],
        ["pairs", "task"],
        tokenizer,
        FeatureOptions(block_size=128),
    )
    model = patch_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), additional_loss_layer=2)
    args = AlignmentTrainingArguments(
        tmp_path / "out",
        per_device_train_batch_size=4,
        use_cpu=True,
        report_to=[],
        remove_unused_columns=False,
        training_mode="alternate",
    )
    trainer = AlignmentTrainer(
        model=model, args=args, train_dataset=streams, data_collator=AlignmentCollator(tokenizer.pad_token_id)
    )
    loader = trainer.get_train_dataloader()  # the loader the Trainer's loop iterates
    assert len(loader) == 2 * 10  # a Trainer epoch is one pass over the task rows
    pairs_seen, task_seen = [], []
    for epoch in range(5):
        loader.set_epoch(epoch)
        for batch in loader:
            if "input_ids_parallel_0" in batch:  # only what the step uses is collated
                assert "input_ids" not in batch and len(batch["input_ids_parallel_1"]) == 4
                pairs_seen.append(
                    {tokenizer.decode(ids, skip_special_tokens=True) for ids in batch["input_ids_parallel_1"]}
                )
            else:
                assert "input_ids_parallel_0" not in batch
                task_seen.append([tokenizer.decode(ids, skip_special_tokens=True) for ids in batch["input_ids"]])
    assert len(pairs_seen) == 50 and set().union(*pairs_seen[: math.ceil(198 / 4)]) == {
        f"target {i}" for i in range(198)
    }
    assert all(len(batch) == 4 for batch in pairs_seen)  # the epoch's last batch is completed, never a pair twice
    for epoch in range(5):
        rows = [text for batch in task_seen[epoch * 10 : (epoch + 1) * 10] for text in batch]
        assert len(rows) == len(set(rows)) == 40
    log = trainer._scheduled.epochs(100)
    assert log == {"task_epoch": 5.0, "pairs_epoch": 1.0}


def scheduled(streams, mode="joint", **overrides):
    values = dict(
        collator=AlignmentCollator(0),
        schedule=Schedule(mode),
        per_device_batch=4,
        world_size=1,
        rank=0,
        accumulation=1,
        seed=7,
        group_by_length=False,
    )
    values.update(overrides)
    return ScheduledBatches(streams, **values)


def test_two_ranks_see_exactly_the_global_batch_of_one_process(tokenizer, tmp_path):
    streams = build_streams(
        [write_rows(tmp_path / "rows.json", n=24)], [], ["pairs", "task"], tokenizer, FeatureOptions(block_size=128)
    )
    one = scheduled(streams, per_device_batch=4)
    ranks = [scheduled(streams, per_device_batch=2, world_size=2, rank=r) for r in range(2)]

    def rows(batch, ids, mask):
        return [row[keep.bool()].tolist() for row, keep in zip(batch[ids], batch[mask])]

    for step in range(8):  # crosses an epoch of 6 global batches
        whole, halves = one[step], [rank[step] for rank in ranks]
        for ids, mask in (
            ("input_ids", "attention_mask"),
            ("labels", "attention_mask"),
            ("input_ids_parallel_1", "attention_mask_parallel_1"),
        ):
            assert rows(halves[0], ids, mask) + rows(halves[1], ids, mask) == rows(whole, ids, mask)
        # every rank knows the global batch's token count: per micro-batch, half the one-process count
        assert halves[0]["num_items_in_batch"] == halves[1]["num_items_in_batch"] == whole["num_items_in_batch"] / 2
        assert whole["num_items_in_batch"] == int((whole["labels"][:, 1:] != -100).sum())


@pytest.mark.parametrize("world_size", [1, 2])
def test_the_pair_stream_has_its_own_batch_size(tokenizer, tmp_path, world_size):
    # 12 task rows in batches of 2 per device, 60 pairs in batches of 5 per device, 3 alignment steps per task step.
    streams = build_streams(
        [write_rows(tmp_path / "task.json", n=12, pairs=False)],
        [write_pairs(tmp_path / "pairs.tsv", 60)],
        ["pairs", "task"],
        tokenizer,
        FeatureOptions(block_size=128),
    )
    ranks = [
        ScheduledBatches(
            streams,
            AlignmentCollator(0),
            Schedule("alternate", alignment_steps_per_task_step=3),
            per_device_batch=2,
            world_size=world_size,
            rank=r,
            accumulation=1,
            seed=7,
            group_by_length=False,
            per_device_pairs_batch=5,
        )
        for r in range(world_size)
    ]
    assert len(ranks[0]) == 4 * 6 // world_size  # a Trainer epoch: each global task batch, then its 3 alignment steps
    targets = []
    for step in range(4 * 6 * 2 // world_size):
        batches = [rank[step] for rank in ranks]
        if step % 4 == 0:
            assert all(len(b["input_ids"]) == 2 and "input_ids_parallel_0" not in b for b in batches)
        else:
            assert all(len(b["input_ids_parallel_1"]) == 5 and "input_ids" not in b for b in batches)
            targets += [
                tokenizer.decode(ids[keep.bool()], skip_special_tokens=True)
                for b in batches
                for ids, keep in zip(b["input_ids_parallel_1"], b["attention_mask_parallel_1"])
            ]
    # every pair once per pair epoch: 60 pairs are 12 / world_size alignment steps of 5 × world_size
    assert len(targets) == 180
    per_epoch = [targets[i : i + 60] for i in range(0, 180, 60)]
    assert all(sorted(epoch) == sorted(f"target {i}" for i in range(60)) for epoch in per_epoch)


def test_length_grouped_batches_are_deterministic_and_pad_less(tokenizer, tmp_path):
    streams = build_streams(
        [write_pairs(tmp_path / "pairs.tsv", 400)], [], ["pairs"], tokenizer, FeatureOptions(block_size=128)
    )

    def padding(batches):
        return sum(int(b["attention_mask_parallel_0"].numel() - b["attention_mask_parallel_0"].sum()) for b in batches)

    grouped = [
        scheduled(streams, mode="alignment", group_by_length=True, collator=AlignmentCollator(0, None))
        for _ in range(2)
    ]
    plain = scheduled(streams, mode="alignment", collator=AlignmentCollator(0, None))
    steps = range(150)  # one and a half epochs
    first, second = ([s[m] for m in steps] for s in grouped)
    assert all(torch.equal(a["input_ids_parallel_0"], b["input_ids_parallel_0"]) for a, b in zip(first, second))
    assert padding(first) < padding([plain[m] for m in steps]) / 3


def test_a_second_start_reads_the_tokenized_cache(tokenizer, tmp_path, monkeypatch):
    files = [write_rows(tmp_path / "rows.json", n=12)]
    calls = []
    for name in ("_records", "tokenize_task_batch", "tokenize_pair_batch"):
        original = getattr(streams_module, name)
        monkeypatch.setattr(streams_module, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    first = build_streams(files, [], ["pairs", "task"], tokenizer, FeatureOptions(block_size=128))
    assert {"_records", "tokenize_task_batch", "tokenize_pair_batch"} <= set(calls)
    calls.clear()
    second = build_streams(files, [], ["pairs", "task"], tokenizer, FeatureOptions(block_size=128))
    assert "tokenize_task_batch" not in calls and "tokenize_pair_batch" not in calls and calls.count("_records") == 0
    assert second.task.examples.cache_files == first.task.examples.cache_files and second.task.rows(
        [3]
    ) == first.task.rows([3])
    calls.clear()
    build_streams(files, [], ["task"], tokenizer, FeatureOptions(block_size=100))  # other options: tokenized again
    assert "tokenize_task_batch" in calls


def test_hard_negatives_enter_the_logged_loss_by_the_formula(tiny_model_dir, tmp_path):
    sides = [
        ("Wake me up at five", "Réveille-moi à cinq heures", "Wake me up at nine"),
        ("Will it rain tomorrow", "明天会下雨吗", "Will it snow today"),
        ("Play some jazz", "Spiele etwas Jazz", "Stop the music"),
        ("What is the weather", "Какая погода", "What is the time"),
    ]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"text_parallel_0": a, "text_parallel_1": b, "text_negative": n}, ensure_ascii=False) + "\n"
            for a, b, n in sides
        ),
        encoding="utf-8",
    )
    common = [
        "--only_train_contrastive",
        "--max_steps",
        "1",
        "--hard_negative_weight",
        "0.5",
        "--contrastive_pooling_skip_first",
        "0",
    ]  # the formula below pools every token, BOS included
    with_negatives = run_training(tiny_model_dir, pairs, tmp_path / "neg", *common).state.log_history[0][
        "alignment_loss"
    ]
    plain = tmp_path / "plain.jsonl"
    plain.write_text(
        "".join(
            json.dumps({"text_parallel_0": a, "text_parallel_1": b}, ensure_ascii=False) + "\n" for a, b, _ in sides
        ),
        encoding="utf-8",
    )
    without = run_training(tiny_model_dir, plain, tmp_path / "plain", *common).state.log_history[0]["alignment_loss"]

    # The formula on the stock model (LoRA starts as the identity): mean-pooled hidden_states[2] with BOS, cosine / 0.1,
    # each anchor's own negative offset by the weight, cross-entropy towards the translation.
    tokenizer, model = (
        AutoTokenizer.from_pretrained(tiny_model_dir),
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
    )

    def pooled(texts):
        encoded = tokenizer(list(texts), padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**encoded, output_hidden_states=True).hidden_states[2]
        mask = encoded.attention_mask.unsqueeze(-1).float()
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    anchors, translations, negatives = (pooled(column) for column in zip(*sides))
    positives = anchors @ translations.T / 0.1
    hard = anchors @ negatives.T / 0.1 + 0.5 * torch.eye(4)
    expected = torch.nn.functional.cross_entropy(torch.cat([positives, hard], dim=1), torch.arange(4))
    assert with_negatives == pytest.approx(float(expected), abs=1e-5)
    assert without == pytest.approx(float(torch.nn.functional.cross_entropy(positives, torch.arange(4))), abs=1e-5)
    assert abs(with_negatives - without) > 1e-3


def test_streaming_needs_max_steps_and_resumes_exactly(tiny_model_dir, tmp_path):
    from transformers_align.training.arguments import ArgumentError

    data = write_rows(tmp_path / "train.json")
    with pytest.raises(ArgumentError, match="--streaming .* pass --max_steps"):
        run_training(tiny_model_dir, data, tmp_path / "none", "--streaming", "--alternate_training")
    common = [
        "--streaming",
        "--alternate_training",
        "--max_steps",
        "4",
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
        "--per_device_train_batch_size",
        "5",
    ]  # 24 rows: the stream's second pass starts inside the run
    straight = run_training(tiny_model_dir, data, tmp_path / "straight", *common)
    resumed = run_training(
        tiny_model_dir,
        data,
        tmp_path / "resumed",
        *common,
        "--resume_from_checkpoint",
        str(tmp_path / "straight/checkpoint-2"),
    )

    def losses(trainer):
        return [
            (h["step"], h.get("task_loss"), h.get("alignment_loss")) for h in trainer.state.log_history if "loss" in h
        ]

    assert len(losses(straight)) == 4 and losses(resumed) == losses(straight)


def test_tokenizing_processes_and_loader_workers_give_the_same_batches(tokenizer, tmp_path):
    from transformers_align.training.batches import ScheduledDataLoader

    files = [write_rows(tmp_path / "rows.json", n=24)]
    one = build_streams(files, [], ["pairs", "task"], tokenizer, FeatureOptions(block_size=128))
    two = build_streams(files, [], ["pairs", "task"], tokenizer, FeatureOptions(block_size=128), num_proc=2)
    assert one.task.rows(range(24)) == two.task.rows(range(24)) and one.pairs.rows(range(24)) == two.pairs.rows(
        range(24)
    )
    batches = scheduled(one, mode="alternate", group_by_length=True)
    loader = ScheduledDataLoader(batches, num_workers=2)
    loader.set_epoch(1)
    for m, batch in zip(range(len(batches), 2 * len(batches)), loader):
        expected = batches[m]
        assert batch.keys() == expected.keys() and all(
            torch.equal(batch[k], expected[k]) for k in batch if k != "num_items_in_batch"
        )
