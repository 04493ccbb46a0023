"""Tokenized training rows (task with the prompt masked to -100, parallel pairs) and the collator that pads them."""
import logging
import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from tqdm.auto import tqdm

from transformers_align.data.records import (
    AFP_FIELDS,
    PAIR_FIELDS,
    PROMPT_COMPLETION_FIELDS,
    TASK_FIELDS,
    SkipCounter,
    load_pairs,
    load_records,
)

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
# (ids field, mask field, labels field or None): each stream is padded to its own length.
STREAMS = (
    ("input_ids", "attention_mask", "labels"),
    ("input_ids_parallel_0", "attention_mask_parallel_0", None),
    ("input_ids_parallel_1", "attention_mask_parallel_1", None),
)
SCHEMAS = ("task", "task+pairs", "prompt+completion", "afp", "pairs")


def detect_schema(record: dict) -> str:
    """The schema a record follows, from its fields: task, task+pairs (mid-align mode 2), prompt+completion, afp, or pairs."""
    keys = set(record)
    if set(AFP_FIELDS) <= keys:
        return "afp"
    if set(PROMPT_COMPLETION_FIELDS) <= keys:
        return "prompt+completion"
    has_task, has_pairs = set(TASK_FIELDS) <= keys, set(PAIR_FIELDS) <= keys
    if has_task:
        return "task+pairs" if has_pairs else "task"
    if has_pairs:
        return "pairs"
    raise ValueError(f"a record with fields {sorted(keys)} matches no schema: expected {TASK_FIELDS}, "
                     f"{TASK_FIELDS + PAIR_FIELDS}, {PROMPT_COMPLETION_FIELDS}, {PAIR_FIELDS} or AFP's {AFP_FIELDS}")


def read_rows(paths: Sequence[str], schema: str, alignment_files: Sequence[str] = (), seed: int = 0) -> List[Dict]:
    """Validated text rows of ``schema`` from ``paths``; pairs from ``alignment_files`` are joined row by row.

    AFP rows become task rows (prompt = the first ``clm_prompt_len`` characters of ``clm_text``) with
    their ``sent0``/``sent1`` as the pair. Pairs from a separate file are shuffled with ``seed`` and
    row i gets pair i mod P, so that every row holds a task example and a pair, as mid-align's files do.
    """
    if schema not in SCHEMAS:
        raise ValueError(f"unknown data schema {schema!r}; choose one of {', '.join(SCHEMAS)}")
    skips = SkipCounter()
    required = {"task": TASK_FIELDS, "task+pairs": TASK_FIELDS + PAIR_FIELDS, "prompt+completion": PROMPT_COMPLETION_FIELDS,
                "afp": AFP_FIELDS, "pairs": PAIR_FIELDS}[schema]
    rows = load_records(paths, required, skips) if paths else []
    if schema == "prompt+completion":
        rows = [{"prefix": r["prompt"], "text": r["completion"], "append_eos": True} for r in rows]
    if schema == "afp":
        rows = [{"prefix": r["clm_text"][: r["clm_prompt_len"]], "text": r["clm_text"][r["clm_prompt_len"]:],
                 "text_parallel_0": r["sent0"], "text_parallel_1": r["sent1"], "append_eos": True} for r in rows]
    if alignment_files:
        pairs = load_pairs(alignment_files, skips)
        if not pairs:
            raise ValueError(f"no usable pairs in {', '.join(map(str, alignment_files))}")
        random.Random(seed).shuffle(pairs)
        rows = [dict(row, **pairs[i % len(pairs)]) for i, row in enumerate(rows)] if rows else pairs
    skips.log(", ".join(map(str, list(paths) + list(alignment_files))))
    return rows


@dataclass
class FeatureOptions:
    block_size: int = 2048  # longest task sequence, in tokens; longer ones are truncated (and counted)
    pair_max_length: Optional[int] = None  # longest pair sentence; default: block_size
    # AFP's clm_text and {prompt, completion} records carry no end marker (mid-align's text ends in <|eot_id|>):
    # without one the model never learns to stop.
    append_eos: bool = True


def tokenize_rows(tokenizer, rows: List[Dict], options: FeatureOptions, chunk: int = 1024) -> List[Dict]:
    """Token ids for each row: task ``input_ids``/``labels`` (prompt -100) and ``input_ids_parallel_0/1``.

    The prompt and the completion are tokenized separately and concatenated, so the -100 mask covers
    exactly the prompt tokens (no merge across the boundary can shift it).
    """
    pair_max = options.pair_max_length or options.block_size
    counts = {"truncated task sequences": 0, "dropped rows whose prompt fills the block": 0, "truncated pair sentences": 0}
    features = []
    for start in tqdm(range(0, len(rows), chunk), desc="tokenizing", unit="chunk", disable=len(rows) <= chunk):
        part = rows[start:start + chunk]
        encoded = {}
        if "prefix" in part[0]:
            encoded["prompt"] = tokenizer([r["prefix"] for r in part]).input_ids
            encoded["completion"] = tokenizer([r["text"] for r in part], add_special_tokens=False).input_ids
        for side in ("text_parallel_0", "text_parallel_1"):
            if side in part[0]:
                encoded[side] = tokenizer([r[side] for r in part]).input_ids
        for i, row in enumerate(part):
            feature = {}
            if "prompt" in encoded:
                prompt, completion = encoded["prompt"][i], encoded["completion"][i]
                if row.get("append_eos") and options.append_eos and tokenizer.eos_token_id is not None:
                    completion = completion + [tokenizer.eos_token_id]
                ids, labels = prompt + completion, [IGNORE_INDEX] * len(prompt) + completion
                if len(ids) > options.block_size:
                    counts["truncated task sequences"] += 1
                    ids, labels = ids[: options.block_size], labels[: options.block_size]
                if all(label == IGNORE_INDEX for label in labels):
                    counts["dropped rows whose prompt fills the block"] += 1
                    continue
                feature.update(input_ids=ids, labels=labels)
            for index, side in enumerate(("text_parallel_0", "text_parallel_1")):
                if side in encoded:
                    ids = encoded[side][i]
                    if len(ids) > pair_max:
                        counts["truncated pair sentences"] += 1
                        ids = ids[:pair_max]
                    feature[f"input_ids_parallel_{index}"] = ids
            features.append(feature)
    for what, count in counts.items():
        if count:
            logger.warning("%d %s (block_size=%d, pair_max_length=%d)", count, what, options.block_size, pair_max)
    return features


@dataclass
class AlignmentCollator:
    """Pads each stream (task, side 0, side 1) of a batch to its own longest length, on the right.

    mid-align patched ``tokenizer.pad`` for this; here the tokenizer stays stock.
    """

    pad_token_id: int
    pad_to_multiple_of: Optional[int] = 8

    def _length(self, longest: int) -> int:
        multiple = self.pad_to_multiple_of
        return longest if not multiple else -(-longest // multiple) * multiple

    def __call__(self, features: List[Dict]) -> Dict[str, torch.Tensor]:
        batch = {}
        for ids_key, mask_key, labels_key in STREAMS:
            if ids_key not in features[0]:
                continue
            length = self._length(max(len(f[ids_key]) for f in features))
            ids = torch.full((len(features), length), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(features), length), dtype=torch.long)
            labels = torch.full((len(features), length), IGNORE_INDEX, dtype=torch.long) if labels_key else None
            for row, feature in enumerate(features):
                n = len(feature[ids_key])
                ids[row, :n] = torch.tensor(feature[ids_key])
                mask[row, :n] = 1
                if labels is not None:
                    labels[row, :n] = torch.tensor(feature[labels_key])
            batch[ids_key], batch[mask_key] = ids, mask
            if labels is not None:
                batch[labels_key] = labels
        return batch
