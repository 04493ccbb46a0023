"""Reading training records (JSON, JSON Lines, TSV) with validation that names the file, line and field."""
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

from transformers_align.data.jsonl import DataFormatError, iter_jsonl, read_json, require_fields, string_field

logger = logging.getLogger(__name__)

TASK_FIELDS = ("prefix", "text")
PROMPT_COMPLETION_FIELDS = ("prompt", "completion")  # AdaMergeX / TRL naming of the same two parts
PAIR_FIELDS = ("text_parallel_0", "text_parallel_1")
AFP_FIELDS = ("sent0", "sent1", "clm_text", "clm_prompt_len")
MAY_BE_EMPTY = ("prefix", "prompt")  # plain language modelling has no prompt


@dataclass
class SkipCounter:
    """Counts of records left out on purpose, logged once per file."""

    counts: Counter = field(default_factory=Counter)

    def add(self, reason: str) -> None:
        self.counts[reason] += 1

    def log(self, source: str) -> None:
        for reason, count in sorted(self.counts.items()):
            logger.warning("%s: skipped %d record(s): %s", source, count, reason)


def iter_json_records(path) -> Iterator[Tuple[int, dict]]:
    """``(line number, record)`` from a JSON array file or a JSON Lines file (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open(encoding="utf-8") as handle:
        is_array = handle.read(4096).lstrip().startswith("[")
    if not is_array:
        yield from iter_jsonl(path)
        return
    records = read_json(path)
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}: record {index}: expected a JSON object, got {type(record).__name__}")
        yield index, record


def iter_tsv_pairs(path) -> Iterator[Tuple[int, List[str]]]:
    """``(line number, [sentence 0, sentence 1])`` from a two-column TSV without header."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) != 2:
                raise DataFormatError(f"{path}:{number}: expected 2 tab-separated columns, found {len(columns)}")
            yield number, columns


def load_records(paths: Sequence, required: Sequence[str], skips: SkipCounter) -> List[Dict]:
    """Records holding ``required`` fields from JSON/JSONL files; rows with an empty sentence are skipped."""
    kept = []
    for path in paths:
        for number, record in iter_json_records(path):
            where = f"{path}:{number}"
            require_fields(record, required, where)
            row = {name: string_field(record, name, where, allow_empty=True) for name in required if name != "clm_prompt_len"}
            empty = [name for name, value in row.items() if not value.strip() and name not in MAY_BE_EMPTY]
            if empty:
                skips.add(f"empty {empty[0]}")
                continue
            if "clm_prompt_len" in required:
                row["clm_prompt_len"] = _checked_prompt_length(record, where)
            kept.append(row)
    return kept


def load_pairs(paths: Sequence, skips: SkipCounter) -> List[Dict]:
    """Parallel pairs from TSV (2 columns) or JSON/JSONL files with text_parallel_0/1."""
    pairs = []
    for path in paths:
        if str(path).endswith(".tsv"):
            for _, (side0, side1) in iter_tsv_pairs(path):
                if not side0.strip() or not side1.strip():
                    skips.add("empty sentence in a pair")
                    continue
                pairs.append({"text_parallel_0": side0, "text_parallel_1": side1})
        else:
            pairs.extend(load_records([path], PAIR_FIELDS, skips))
    return pairs


def _checked_prompt_length(record: dict, where: str) -> int:
    value = record["clm_prompt_len"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= len(record["clm_text"]):
        raise DataFormatError(
            f"{where}: field 'clm_prompt_len' must be an integer between 0 and len(clm_text)={len(record['clm_text'])}, got {value!r}"
        )
    return value
