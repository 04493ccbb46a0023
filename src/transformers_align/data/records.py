"""Reading training records (JSON, JSON Lines, TSV) with validation that names the file, line and field.

A training file holds task examples, parallel pairs, or both in each record (mid-align's rows, AFP's
records). :func:`iter_stream_records` reads one of the two streams out of any of them.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from transformers_align.data.jsonl import (
    DataFormatError,
    iter_jsonl,
    iter_text_lines,
    read_json,
    require_fields,
    string_field,
)

logger = logging.getLogger(__name__)

TASK_FIELDS = ("prefix", "text")
PROMPT_COMPLETION_FIELDS = ("prompt", "completion")  # AdaMergeX / TRL naming of the same two parts
PAIR_FIELDS = ("text_parallel_0", "text_parallel_1")
NEGATIVE_FIELD = "text_negative"  # optional: a hard negative for side 0, next to a pair
AFP_FIELDS = ("sent0", "sent1", "clm_text", "clm_prompt_len")
TRANSLATED_FIELD = "prefix_translated"  # the task's prompt in another language, for the consistency objective
MAY_BE_EMPTY = ("prefix", "prompt")  # plain language modelling has no prompt
SCHEMAS = ("task", "task+pairs", "task+translation", "prompt+completion", "afp", "pairs")
SCHEMA_FIELDS = {
    "task": TASK_FIELDS,
    "task+pairs": TASK_FIELDS + PAIR_FIELDS,
    "task+translation": TASK_FIELDS + (TRANSLATED_FIELD,),
    "prompt+completion": PROMPT_COMPLETION_FIELDS,
    "afp": AFP_FIELDS,
    "pairs": PAIR_FIELDS,
}
TASK, PAIRS, PARALLEL_TASK = "task", "pairs", "parallel_task"  # the streams (parallel_task: consistency)


@dataclass
class SkipCounter:
    """Counts of records left out on purpose, logged once per file."""

    counts: Counter = field(default_factory=Counter)

    def add(self, reason: str) -> None:
        self.counts[reason] += 1

    def log(self, source: str) -> None:
        for reason, count in sorted(self.counts.items()):
            logger.warning("%s: skipped %d record(s): %s", source, count, reason)


def detect_schema(record: dict, where: str = "a record") -> str:
    """The schema a record follows, from its fields: task, task+pairs (mid-align mode 2), task+translation,
    prompt+completion, afp, or pairs."""
    keys = set(record)
    if set(AFP_FIELDS) <= keys:
        return "afp"
    if set(PROMPT_COMPLETION_FIELDS) <= keys:
        return "prompt+completion"
    has_task, has_pairs = set(TASK_FIELDS) <= keys, set(PAIR_FIELDS) <= keys
    if has_task and TRANSLATED_FIELD in keys and not has_pairs:
        return "task+translation"
    if has_task:
        return "task+pairs" if has_pairs else "task"
    if has_pairs:
        return "pairs"
    raise DataFormatError(
        f"{where}: fields {sorted(keys)} match no schema: expected {TASK_FIELDS}, {TASK_FIELDS + PAIR_FIELDS}, "
        f"{PROMPT_COMPLETION_FIELDS}, {PAIR_FIELDS} or AFP's {AFP_FIELDS}"
    )


def streams_of(schema: str) -> Tuple[str, ...]:
    """The streams that records of ``schema`` feed."""
    if schema not in SCHEMAS:
        raise DataFormatError(f"unknown data schema {schema!r}; choose one of {', '.join(SCHEMAS)}")
    return {
        "task": (TASK,),
        "prompt+completion": (TASK,),
        "pairs": (PAIRS,),
        "task+translation": (TASK, PARALLEL_TASK),
    }.get(schema, (TASK, PAIRS))


def iter_json_records(path) -> Iterator[Tuple[int, dict]]:
    """``(line number, record)`` from a JSON array file or a JSON Lines file (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    with path.open("rb") as handle:
        is_array = handle.read(4096).lstrip().startswith(b"[")
    if not is_array:
        yield from iter_jsonl(path)
        return
    records = read_json(path)
    if not isinstance(records, list):
        raise DataFormatError(f"{path}:1: expected a JSON array of records or JSON Lines")
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}: record {index}: expected a JSON object, got {type(record).__name__}")
        yield index, record


def iter_tsv_rows(
    path, columns: Sequence[str], header: bool = False, tabs_in_first: bool = False
) -> Iterator[Tuple[int, List[str]]]:
    """``(line number, fields)`` of a UTF-8 tab-separated file with one field per name in ``columns``.

    Blank lines are passed over; with ``header`` so is line 1. With ``tabs_in_first`` the first field may
    itself hold tabs (the others are split off from the right). A line with another number of fields
    is an error naming the file, the line and the expected columns.
    """
    for number, line in iter_text_lines(path):
        line = line.rstrip("\r\n")
        if not line.strip() or (header and number == 1):
            continue
        fields = line.rsplit("\t", len(columns) - 1) if tabs_in_first else line.split("\t")
        if len(fields) != len(columns):
            raise DataFormatError(
                f"{path}:{number}: expected {len(columns)} tab-separated columns, found {len(fields)} "
                f"({'<TAB>'.join(columns)})"
            )
        yield number, fields


def file_schema(path, schema: str = "auto") -> str:
    """``schema``, or for ``auto`` the schema of the file's first record; a file with no record is an error."""
    number, record = next(_iter_file(path), (None, None))
    if record is None:
        raise DataFormatError(f"{path}: the file holds no records")
    return detect_schema(record, f"{path}:{number}") if schema == "auto" else schema


def iter_stream_records(path, stream: str, schema: str = "auto") -> Iterator[Dict]:
    """The ``stream`` part of every record of one file, validated, with its ``line`` and a ``skipped``
    reason ("" if kept).

    Task records: ``prefix``, ``text``, ``append_eos`` (AFP's and {prompt, completion} records carry no
    end marker; mid-align's text ends in <|eot_id|>). Pair records: ``text_parallel_0/1`` and, when
    the file has them, ``text_negative``. Parallel task records: the task part and ``prefix_translated``. A file
    with no record is an error.
    """
    schema = file_schema(path, schema)
    if stream not in streams_of(schema):
        return
    has_negative = None
    for number, record in _iter_file(path):
        where = f"{path}:{number}"
        has_negative = (stream == PAIRS and NEGATIVE_FIELD in record) if has_negative is None else has_negative
        require_fields(record, SCHEMA_FIELDS[schema] + ((NEGATIVE_FIELD,) if has_negative else ()), where)
        row = _task_part(record, schema, where) if stream != PAIRS else _pair_part(record, schema, has_negative, where)
        if stream == PARALLEL_TASK:
            row[TRANSLATED_FIELD] = string_field(record, TRANSLATED_FIELD, where, allow_empty=True)
        empty = [
            name
            for name, value in row.items()
            if isinstance(value, str) and not value.strip() and name not in MAY_BE_EMPTY
        ]
        row.update(line=number, skipped=f"empty {empty[0]}" if empty else "")
        yield row


def _iter_file(path) -> Iterator[Tuple[int, dict]]:
    if str(path).endswith(".tsv"):
        return ((number, dict(zip(PAIR_FIELDS, columns))) for number, columns in iter_tsv_rows(path, PAIR_FIELDS))
    return iter_json_records(path)


def _task_part(record: dict, schema: str, where: str) -> Dict:
    if schema == "afp":
        text = _text(record, "clm_text", where)
        cut = _checked_prompt_length(record, where)
        return {"prefix": text[:cut], "text": text[cut:], "append_eos": True}
    if schema == "prompt+completion":
        return {
            "prefix": _text(record, "prompt", where),
            "text": _text(record, "completion", where),
            "append_eos": True,
        }
    return {"prefix": _text(record, "prefix", where), "text": _text(record, "text", where), "append_eos": False}


def _pair_part(record: dict, schema: str, has_negative: bool, where: str) -> Dict:
    names = ("sent0", "sent1") if schema == "afp" else PAIR_FIELDS
    row = {side: _text(record, name, where) for side, name in zip(PAIR_FIELDS, names)}
    if has_negative:
        row[NEGATIVE_FIELD] = _text(record, NEGATIVE_FIELD, where)
    return row


def load_records(paths: Sequence, required: Sequence[str], skips: SkipCounter) -> List[Dict]:
    """Records holding ``required`` fields from JSON/JSONL files; rows with an empty sentence are skipped."""
    kept = []
    for path in paths:
        for number, record in iter_json_records(path):
            where = f"{path}:{number}"
            require_fields(record, required, where)
            row = {name: _text(record, name, where) for name in required}
            empty = [name for name, value in row.items() if not value.strip() and name not in MAY_BE_EMPTY]
            if empty:
                skips.add(f"empty {empty[0]}")
                continue
            kept.append(row)
    return kept


def load_pairs(paths: Sequence, skips: Optional[SkipCounter] = None) -> List[Dict]:
    """Parallel pairs (with ``text_negative`` where the file has it) from TSV or JSON/JSONL files; empty
    ones are skipped."""
    skips = skips if skips is not None else SkipCounter()
    pairs = []
    for path in paths:
        for row in iter_stream_records(path, PAIRS, "pairs"):
            if row.pop("skipped"):
                skips.add("empty sentence in a pair")
                continue
            row.pop("line")
            pairs.append(row)
    return pairs


def _text(record: dict, name: str, where: str) -> str:
    """A text field to train on: a string (empty allowed: skipped and counted later); a number is an error, since
    a number where text belongs is a mistake in the file (docs/training_data.md)."""
    return string_field(record, name, where, allow_empty=True, accept_numbers=False)


def _checked_prompt_length(record: dict, where: str) -> int:
    value = record["clm_prompt_len"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= len(record["clm_text"]):
        raise DataFormatError(
            f"{where}: field 'clm_prompt_len' must be an integer between 0 and "
            f"len(clm_text)={len(record['clm_text'])}, got {value!r}"
        )
    return value
