"""Tokenized training examples (task with the prompt masked to -100, parallel pairs) and the collator that pads them.

The batched functions here are what ``datasets.map`` runs (see ``data.streams``); :func:`tokenize_rows`
applies the same functions to a small list in memory.
"""

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from transformers_align.data.records import (
    NEGATIVE_FIELD,
    PAIRS,
    PARALLEL_TASK,
    TASK,
    TRANSLATED_FIELD,
    iter_stream_records,
)
from transformers_align.padding import pad_right, pad_right_with_mask

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
# (ids field, mask field, labels field or None): each stream is padded to its own length.
STREAMS = (
    ("input_ids", "attention_mask", "labels"),
    ("input_ids_parallel_0", "attention_mask_parallel_0", None),
    ("input_ids_parallel_1", "attention_mask_parallel_1", None),
    ("input_ids_negative", "attention_mask_negative", None),
    ("input_ids_consistency_0", "attention_mask_consistency_0", "labels_consistency_0"),
    ("input_ids_consistency_1", "attention_mask_consistency_1", "labels_consistency_1"),
)
PAIR_ID_FIELDS = {
    "text_parallel_0": "input_ids_parallel_0",
    "text_parallel_1": "input_ids_parallel_1",
    NEGATIVE_FIELD: "input_ids_negative",
}


@dataclass
class FeatureOptions:
    block_size: int = 2048  # longest task sequence, in tokens; longer ones are truncated (and counted)
    pair_max_length: Optional[int] = None  # longest pair sentence; default: block_size
    # AFP's clm_text and {prompt, completion} records carry no end marker (mid-align's text ends in <|eot_id|>):
    # without one the model never learns to stop.
    append_eos: bool = True

    @property
    def pair_limit(self) -> int:
        return self.pair_max_length or self.block_size


def tokenize_task_batch(batch: Dict[str, list], tokenizer, options: FeatureOptions) -> Dict[str, list]:
    """Columns ``input_ids``, ``labels`` (prompt -100), ``num_labels``, ``length``, ``truncated`` for the
    kept task records.

    The prompt and the completion are tokenized separately and concatenated, so the -100 mask covers
    exactly the prompt tokens (no merge across the boundary can shift it). Records whose prompt fills
    the block (nothing left to learn) are dropped. ``num_labels`` counts the positions the shifted
    causal-LM loss scores (labels after the first token), for the global token mean of the loss.
    """
    kept = [i for i, reason in enumerate(batch.get("skipped") or [""] * len(batch["text"])) if not reason]
    out = {"input_ids": [], "labels": [], "num_labels": [], "length": [], "truncated": []}
    if not kept:
        return out
    prompts = tokenizer([batch["prefix"][i] for i in kept]).input_ids
    completions = tokenizer([batch["text"][i] for i in kept], add_special_tokens=False).input_ids
    eos = tokenizer.eos_token_id if options.append_eos else None
    for i, prompt, completion in zip(kept, prompts, completions):
        if batch["append_eos"][i] and eos is not None:
            completion = completion + [eos]
        ids, labels = prompt + completion, [IGNORE_INDEX] * len(prompt) + completion
        truncated = len(ids) > options.block_size
        ids, labels = ids[: options.block_size], labels[: options.block_size]
        num_labels = sum(label != IGNORE_INDEX for label in labels[1:])
        if not num_labels:
            continue
        for name, value in zip(out, (ids, labels, num_labels, len(ids), truncated)):
            out[name].append(value)
    return out


def tokenize_parallel_task_batch(batch: Dict[str, list], tokenizer, options: FeatureOptions) -> Dict[str, list]:
    """Columns ``input_ids_consistency_0/1``, ``labels_consistency_0/1``, ``num_labels``, ``length``, ``truncated``:
    side 0 the task prompt, side 1 the translated prompt, each followed by the same completion tokens (labelled).

    The completion is tokenized once, so both sides end in the same target ids; it is cut for both sides so
    that the longer one fits the block. Records with an empty prompt (no BOS either) or no room left for a
    target token are dropped.
    """
    kept = [i for i, reason in enumerate(batch.get("skipped") or [""] * len(batch["text"])) if not reason]
    out = {name: [] for name in ("input_ids_consistency_0", "labels_consistency_0", "input_ids_consistency_1")}
    out.update(labels_consistency_1=[], num_labels=[], length=[], truncated=[])
    if not kept:
        return out
    sources = tokenizer([batch["prefix"][i] for i in kept]).input_ids
    translations = tokenizer([batch[TRANSLATED_FIELD][i] for i in kept]).input_ids
    completions = tokenizer([batch["text"][i] for i in kept], add_special_tokens=False).input_ids
    eos = tokenizer.eos_token_id if options.append_eos else None
    for i, source, translation, completion in zip(kept, sources, translations, completions):
        if batch["append_eos"][i] and eos is not None:
            completion = completion + [eos]
        room = options.block_size - max(len(source), len(translation))
        target = completion[: max(room, 0)]
        if not (source and translation and target):  # every target token is scored only after a prompt token
            continue
        sides = [(prompt + target, [IGNORE_INDEX] * len(prompt) + target) for prompt in (source, translation)]
        values = (*sides[0], *sides[1], len(target), max(len(ids) for ids, _ in sides), len(target) < len(completion))
        for name, value in zip(out, values):
            out[name].append(value)
    return out


def tokenize_pair_batch(batch: Dict[str, list], tokenizer, options: FeatureOptions) -> Dict[str, list]:
    """Columns ``input_ids_parallel_0/1`` (and ``input_ids_negative``), ``length`` (the longest side), ``truncated``."""
    kept = [i for i, reason in enumerate(batch.get("skipped") or [""] * len(batch["text_parallel_0"])) if not reason]
    full = {
        ids_field: tokenizer([batch[text_field][i] for i in kept]).input_ids if kept else []
        for text_field, ids_field in PAIR_ID_FIELDS.items()
        if text_field in batch
    }
    out = {ids_field: [ids[: options.pair_limit] for ids in sides] for ids_field, sides in full.items()}
    longest = [max(len(sides[row]) for sides in full.values()) for row in range(len(kept))]
    out["length"] = [min(length, options.pair_limit) for length in longest]
    out["truncated"] = [length > options.pair_limit for length in longest]
    return out


def read_rows(paths: Sequence[str], schema: str = "auto") -> List[Dict]:
    """Validated text rows of small files in memory: the task part and the pair part of each record, in one dict."""
    rows = []
    for path in paths:
        by_line: Dict[int, Dict] = {}
        for stream in (TASK, PAIRS, PARALLEL_TASK):
            for record in iter_stream_records(path, stream, schema):
                if not record.pop("skipped"):
                    by_line.setdefault(record["line"], {}).update(record)
        rows.extend(by_line[line] for line in sorted(by_line))
    return rows


def tokenize_rows(tokenizer, rows: List[Dict], options: FeatureOptions) -> List[Dict]:
    """Token ids for rows in memory: task ``input_ids``/``labels`` and ``input_ids_parallel_0/1`` where a row has them.

    A row whose prompt fills the block loses its task part (and is dropped if it has no pair).
    """
    features = []
    for row in rows:
        feature = {}
        if "text" in row:
            task = tokenize_task_batch(
                {name: [row.get(name, "")] for name in ("prefix", "text")}
                | {"append_eos": [row.get("append_eos", False)]},
                tokenizer,
                options,
            )
            feature.update({name: task[name][0] for name in ("input_ids", "labels")} if task["input_ids"] else {})
        if TRANSLATED_FIELD in row:
            parallel = tokenize_parallel_task_batch(
                {name: [row.get(name, "")] for name in ("prefix", "text", TRANSLATED_FIELD)}
                | {"append_eos": [row.get("append_eos", False)]},
                tokenizer,
                options,
            )
            feature.update({name: values[0] for name, values in parallel.items() if "consistency" in name and values})
        if "text_parallel_0" in row:
            pairs = tokenize_pair_batch(
                {name: [row[name]] for name in PAIR_ID_FIELDS if name in row}, tokenizer, options
            )
            feature.update({name: pairs[name][0] for name in PAIR_ID_FIELDS.values() if name in pairs})
        if feature:
            features.append(feature)
    return features


@dataclass
class AlignmentCollator:
    """Pads each stream (task, side 0, side 1) of a batch to its own longest length, on the right.

    mid-align patched ``tokenizer.pad`` for this; here the tokenizer stays stock.
    """

    pad_token_id: int
    pad_to_multiple_of: Optional[int] = 8

    def __call__(self, features: List[Dict]) -> Dict[str, torch.Tensor]:
        """Each stream from the features that hold it (an evaluation batch may mix task and pair examples)."""
        batch = {}
        for ids_key, mask_key, labels_key in STREAMS:
            rows = [feature for feature in features if ids_key in feature]
            if not rows:
                continue
            batch[ids_key], batch[mask_key] = pad_right_with_mask(
                [f[ids_key] for f in rows], self.pad_token_id, self.pad_to_multiple_of
            )
            if labels_key:
                batch[labels_key] = pad_right([f[labels_key] for f in rows], IGNORE_INDEX, self.pad_to_multiple_of)
        return batch
