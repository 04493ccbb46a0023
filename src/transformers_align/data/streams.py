"""The two training streams, task examples and parallel pairs, as tokenized ``datasets``: cached on disk, or streamed.

Each file is read once into Arrow (validated record by record, errors name the file and line) and
tokenized with ``datasets.map`` (batched, ``num_proc`` workers). Both steps are cached on disk under a
fingerprint of the file (path, size, modification time), the tokenizer and the options, so a second
run with the same data starts without reading or tokenizing again. With ``streaming`` nothing is
cached: records are read, tokenized and batched as training consumes them (files larger than memory).
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from transformers_align.data.features import (
    PAIR_ID_FIELDS,
    FeatureOptions,
    tokenize_pair_batch,
    tokenize_parallel_task_batch,
    tokenize_task_batch,
)
from transformers_align.data.jsonl import DataFormatError
from transformers_align.data.records import (
    NEGATIVE_FIELD,
    PAIRS,
    PARALLEL_TASK,
    TASK,
    file_schema,
    iter_stream_records,
    streams_of,
)

logger = logging.getLogger(__name__)
FORMAT_VERSION = 1  # bump when the Arrow columns written here change, so that old caches are not reused
VALIDATED_AHEAD = 1000  # records per file checked before training when streaming (the rest is checked as it is read)


@dataclass
class Stream:
    """One stream's tokenized examples, with per-example ``lengths`` (for length-grouped batches) and, for the
    task and parallel task streams, ``num_labels`` (scored tokens, for the token mean of the loss); both None
    when streaming."""

    name: str
    examples: object  # datasets.Dataset, datasets.IterableDataset, or a list of feature dicts
    lengths: Optional[np.ndarray] = None
    num_labels: Optional[np.ndarray] = None
    sources: str = ""
    repeats_removed: int = 0  # pairs left out as copies of an earlier pair (see ``_without_repeated_pairs``)

    @property
    def streaming(self) -> bool:
        return self.lengths is None

    def __len__(self) -> int:
        return len(self.lengths)

    def rows(self, indices) -> List[Dict]:
        """The examples at ``indices`` as feature dicts."""
        indices = [int(i) for i in indices]
        if hasattr(self.examples, "__getitems__"):
            return self.examples.__getitems__(indices)
        return [self.examples[i] for i in indices]


@dataclass
class TrainingStreams:
    """Task examples, parallel pairs and parallel task examples, each sampled on its own (``training.batches``)."""

    task: Optional[Stream] = None
    pairs: Optional[Stream] = None
    has_negatives: bool = False
    parallel_task: Optional[Stream] = None
    streams: Dict[str, Stream] = field(init=False)

    def __post_init__(self):
        named = ((TASK, self.task), (PAIRS, self.pairs), (PARALLEL_TASK, self.parallel_task))
        self.streams = {name: s for name, s in named if s is not None}

    @property
    def streaming(self) -> bool:
        return any(s.streaming for s in self.streams.values())

    def __len__(self) -> int:
        """Examples of the first stream (the Trainer only asks whether there is a length)."""
        if self.streaming:
            raise TypeError("a streamed dataset has no length")
        return len(next(iter(self.streams.values())))

    @classmethod
    def from_features(cls, features: Sequence[Dict]) -> "TrainingStreams":
        """Streams from features in memory (``tokenize_rows`` output): rows with ``input_ids`` feed the task stream,
        rows with ``input_ids_parallel_0`` the pair stream."""
        task = [{k: f[k] for k in ("input_ids", "labels")} for f in features if "input_ids" in f]
        pairs = [{k: f[k] for k in PAIR_ID_FIELDS.values() if k in f} for f in features if "input_ids_parallel_0" in f]
        made = {}
        parallel = [{k: f[k] for k in f if "consistency" in k} for f in features if "input_ids_consistency_0" in f]
        if parallel:
            made["parallel_task"] = Stream(
                PARALLEL_TASK,
                parallel,
                np.array([max(len(f["input_ids_consistency_0"]), len(f["input_ids_consistency_1"])) for f in parallel]),
                np.array([sum(label != -100 for label in f["labels_consistency_1"][1:]) for f in parallel]),
                "memory",
            )
        if task:
            made["task"] = Stream(
                TASK,
                task,
                np.array([len(f["input_ids"]) for f in task]),
                np.array([sum(label != -100 for label in f["labels"][1:]) for f in task]),
                "memory",
            )
        if pairs:
            made["pairs"] = Stream(
                PAIRS, pairs, np.array([max(len(v) for v in f.values()) for f in pairs]), sources="memory"
            )
        return cls(**made, has_negatives=bool(pairs) and "input_ids_negative" in pairs[0])


def build_streams(
    train_files: Sequence[str],
    alignment_files: Sequence[str],
    wanted: Sequence[str],
    tokenizer,
    options: FeatureOptions,
    schema: str = "auto",
    num_proc: Optional[int] = None,
    streaming: bool = False,
    max_samples: Optional[int] = None,
) -> TrainingStreams:
    """The ``wanted`` streams (task, pairs) of ``train_files``; pairs also come from ``alignment_files``.

    mid-align's rows and AFP's records feed both streams; task-only files feed the task stream, pair
    files (TSV, JSON Lines with text_parallel_0/1) the pair stream. Every bad record is an error naming
    its file and line; skipped, dropped and truncated records are counted and logged.
    """
    sources = {
        TASK: [(path, schema) for path in train_files if TASK in _file_streams(path, schema)],
        PAIRS: [(path, schema) for path in train_files if PAIRS in _file_streams(path, schema)]
        + [(path, "pairs") for path in alignment_files],
        PARALLEL_TASK: [(path, schema) for path in train_files if PARALLEL_TASK in _file_streams(path, schema)],
    }
    made = {}
    for name in wanted:
        if not sources[name]:
            continue
        build = _streamed if streaming else _cached
        made[name] = build(name, sources[name], tokenizer, options, num_proc, max_samples)
    has_negatives = PAIRS in made and "input_ids_negative" in _columns(made[PAIRS].examples)
    if has_negatives and any(not _first_has_negative(path, s) for path, s in sources[PAIRS]):
        raise DataFormatError(
            f"{', '.join(p for p, s in sources[PAIRS] if not _first_has_negative(p, s))}: no "
            f"'{NEGATIVE_FIELD}' field, but other pair files have one: give every pair a hard negative or none"
        )
    return TrainingStreams(
        task=made.get(TASK), pairs=made.get(PAIRS), has_negatives=has_negatives, parallel_task=made.get(PARALLEL_TASK)
    )


def _file_streams(path, schema: str):
    return streams_of("pairs" if str(path).endswith(".tsv") else file_schema(path, schema))


def _first_has_negative(path, schema) -> bool:
    return NEGATIVE_FIELD in next(_records(path, PAIRS, schema, 0), {})


def _records(path, stream: str, schema: str, file_index: int):
    """The generator that ``datasets`` turns into Arrow: validated records of one file, with the file's index."""
    for record in iter_stream_records(path, stream, schema):
        record["file"] = file_index
        yield record


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps([FORMAT_VERSION, *parts], default=str, sort_keys=True).encode()).hexdigest()[:32]


def _file_signature(path) -> list:
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def _unwrap_generation_error(call):
    """``datasets`` wraps an exception raised while generating in DatasetGenerationError; give the user's back."""
    from datasets.exceptions import DatasetGenerationError

    try:
        return call()
    except DatasetGenerationError as error:
        if isinstance(error.__cause__, DataFormatError):
            raise error.__cause__ from None
        raise


def _tokenize(stream: str):
    return {TASK: tokenize_task_batch, PAIRS: tokenize_pair_batch, PARALLEL_TASK: tokenize_parallel_task_batch}[stream]


def _tokenizer_fingerprint(tokenizer) -> str:
    from datasets.fingerprint import Hasher

    return Hasher.hash(tokenizer)


def _cached(stream, sources, tokenizer, options, num_proc, max_samples) -> Stream:
    import datasets

    names = ", ".join(str(path) for path, _ in sources)
    tokenizer_print, parts, raws, raw_kept = _tokenizer_fingerprint(tokenizer), [], [], 0
    for index, (path, schema) in enumerate(sources):
        raw_print = _fingerprint("records", _file_signature(path), stream, schema, index)
        raw = _unwrap_generation_error(
            lambda: datasets.Dataset.from_generator(
                _records,
                gen_kwargs={"path": path, "stream": stream, "schema": schema, "file_index": index},
                fingerprint=raw_print,
            )
        )
        raw_kept += _log_skips(raw, path)
        raws.append((path, raw))
        parts.append(
            raw.map(
                _tokenize(stream),
                batched=True,
                fn_kwargs={"tokenizer": tokenizer, "options": options},
                remove_columns=raw.column_names,
                num_proc=num_proc,
                desc=f"tokenizing {stream} ({Path(path).name})",
                new_fingerprint=_fingerprint(raw_print, "tokenized", tokenizer_print, vars(options)),
            )
        )
    examples = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if raw_kept == 0:
        raise DataFormatError(f"{names}: every {stream} record was skipped (see the counts above): nothing to train on")
    if len(examples) == 0:
        path, line = next((path, row["line"]) for path, raw in raws for row in raw if not row["skipped"])
        raise DataFormatError(
            f"{path}:{line} and every other {stream} record: the prompt "
            f"fills --block_size {options.block_size}, so no completion token is left to learn from"
        )
    _log_cuts(stream, raw_kept, examples, options)
    repeats = 0
    if stream == PAIRS:
        examples, repeats = _without_repeated_pairs(examples, names)
    if max_samples:
        examples = examples.select(range(min(max_samples, len(examples))))
    counts = examples.select_columns([c for c in ("length", "num_labels") if c in examples.column_names]).with_format(
        "numpy"
    )[:]
    examples = examples.remove_columns(["length", "truncated"] + (["num_labels"] if stream != PAIRS else []))
    return Stream(stream, examples, counts["length"], counts.get("num_labels"), names, repeats)


def _without_repeated_pairs(examples, names):
    """The pairs without copies of an earlier pair (the same tokens on both sides), and how many were removed.

    In an InfoNCE batch a pair's copy is one of its negatives, with the same similarity as the positive: a
    false negative that holds the loss above ln 2. A sentence repeated on one side only (one English sentence
    with translations into several languages) is kept, and counted at info level.
    """
    sides = [f"input_ids_{side}" for side in ("parallel_0", "parallel_1")]
    rows = (
        pair
        for batch in examples.select_columns(sides).iter(batch_size=10_000)
        for pair in zip(batch[sides[0]], batch[sides[1]])
    )
    seen, seen_by_side, kept, shared = set(), (set(), set()), [], 0
    for index, (ids_0, ids_1) in enumerate(rows):
        pair = (tuple(ids_0), tuple(ids_1))
        if pair in seen:
            continue
        shared += any(ids in known for ids, known in zip(pair, seen_by_side))
        seen.add(pair)
        for ids, known in zip(pair, seen_by_side):
            known.add(ids)
        kept.append(index)
    removed = len(examples) - len(kept)
    if removed:
        logger.warning(
            "%s: removed %d repeated pair(s) (the same sentences on both sides as an earlier pair; in one "
            "contrastive batch a copy is a false negative); %d pairs left",
            names,
            removed,
            len(kept),
        )
    if shared:
        logger.info("%s: %d pairs share one side's sentence with an earlier pair (kept)", names, shared)
    return (examples.select(kept) if removed else examples), removed


def _log_skips(raw, path) -> int:
    """Logs why records were skipped; returns how many were kept."""
    import pyarrow.compute as pc

    counts = {entry["values"].as_py(): entry["counts"].as_py() for entry in pc.value_counts(raw.data.column("skipped"))}
    for reason, count in sorted(counts.items()):
        if reason:
            logger.warning("%s: skipped %d record(s): %s", path, count, reason)
    return counts.get("", 0)


def _log_cuts(stream, kept, examples, options) -> None:
    truncated = int(np.sum(examples.select_columns(["truncated"]).with_format("numpy")[:]["truncated"]))
    if truncated:
        logger.warning(
            "%d %s truncated (block_size=%d, pair_max_length=%d)",
            truncated,
            "task sequences" if stream == TASK else "pairs with a sentence",
            options.block_size,
            options.pair_limit,
        )
    if kept > len(examples):
        logger.warning(
            "dropped %d task records whose prompt fills the block (block_size=%d)",
            kept - len(examples),
            options.block_size,
        )


def _columns(examples) -> List[str]:
    if isinstance(examples, list):
        return list(examples[0]) if examples else []
    return list(examples.column_names or examples.features or [])


def _streamed(stream, sources, tokenizer, options, num_proc, max_samples) -> Stream:
    import datasets

    for index, (path, schema) in enumerate(sources):  # fail before training on what can be checked cheaply
        checked = [r for _, r in zip(range(VALIDATED_AHEAD), _records(path, stream, schema, index))]
        if checked and all(r["skipped"] for r in checked):
            logger.warning("%s: the first %d %s records were all skipped", path, len(checked), stream)

    def every_file():
        for index, (path, schema) in enumerate(sources):
            yield from _records(path, stream, schema, index)

    examples = datasets.IterableDataset.from_generator(every_file)
    columns = list(next(_records(sources[0][0], stream, sources[0][1], 0)))
    examples = examples.map(
        _tokenize(stream), batched=True, fn_kwargs={"tokenizer": tokenizer, "options": options}, remove_columns=columns
    )
    if max_samples:
        examples = examples.take(max_samples)
    return Stream(stream, examples, sources=", ".join(str(p) for p, _ in sources))
