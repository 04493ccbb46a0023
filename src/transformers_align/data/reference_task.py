"""AdaMergeX reference-task data: raw text of one language cut into fixed windows of words or characters.

The reference task is causal language modelling on Wikipedia-like text. All input documents form one
stream of units (words, or characters for languages written without spaces), cut into consecutive,
non-overlapping windows of ``chunk_size`` units; an incomplete last window is dropped. Each window becomes
one ``{prompt, completion}`` record: the first ``prompt_units`` units are the prompt, the rest the
completion, and ``prompt + completion`` is always the window's text (for words, the completion starts with
the space that separates it from the prompt). AdaMergeX's effective objective is a loss on every token of
the window; with a trainer that masks the prompt, the default ``prompt_units=1`` comes within one unit of
it (the library's trainer skips records with an empty prompt; ``prompt_units=0`` puts the whole window in
the completion for trainers that accept that). The reference's demo files use ``chunk_size=512,
prompt_units=511``, a split that its training ignores.
"""

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from transformers_align.data.jsonl import DataFormatError, string_field
from transformers_align.data.records import iter_json_records
from transformers_align.errors import UserError

# Primary language subtags of scripts written without spaces between words: cut these by character.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "dz", "yue", "wuu", "lzh"})
UNITS = ("word", "char")
FORMATS = ("text", "json")


def default_unit(language: str) -> str:
    """``char`` for languages written without spaces (zh, ja, th, ...; ``zh-CN`` counts as zh), else ``word``."""
    primary = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    if not primary:
        raise UserError("a language code is needed to choose between word and character windows")
    return "char" if primary in UNSPACED_LANGUAGES else "word"


def input_format(path: Path, fmt: str = "auto") -> str:
    """``json`` for .json/.jsonl files (a JSON array or JSON Lines of records), ``text`` otherwise."""
    if fmt == "auto":
        return "json" if path.suffix.lower() in (".json", ".jsonl") else "text"
    if fmt not in FORMATS:
        raise UserError(f"unknown input format {fmt!r}; choose from auto, {', '.join(FORMATS)}")
    return fmt


def read_documents(path, fmt: str = "auto", text_field: str = "text") -> Iterator[str]:
    """The texts of one input file: each non-blank line of a plain-text file, or ``text_field`` of each record."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if input_format(path, fmt) == "json":
        for line_number, record in iter_json_records(path):
            where = f"{path}:{line_number}"
            if text_field not in record:
                raise DataFormatError(f"{where}: missing field {text_field!r}")
            yield string_field(record, text_field, where, allow_empty=True)
        return
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(f"{path}:{line_number}: not UTF-8 text ({error.reason})") from None
            if line.strip():
                yield line


def split_units(text: str, unit: str) -> List[str]:
    """Words (split on whitespace), or characters with whitespace runs turned into one space.

    A character unit keeps its combining marks (Unicode category M: Thai vowels and tone marks, accents),
    so a window boundary never separates a mark from its base character.
    """
    if unit == "word":
        return text.split()
    if unit != "char":
        raise UserError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}")
    units: List[str] = []
    for character in " ".join(text.split()):
        if units and unicodedata.category(character).startswith("M"):
            units[-1] += character
        else:
            units.append(character)
    return units


def iter_windows(documents: Iterable[str], unit: str, chunk_size: int) -> Iterator[Tuple[List[str], int]]:
    """``(window, units left over)``: windows of ``chunk_size`` units over all documents as one stream.

    For characters, documents are joined by one space. The count of units left over after the last full
    window is returned with every window, final once the stream ends.
    """
    buffer: List[str] = []
    for document in documents:
        units = split_units(document, unit)
        if not units:
            continue
        if unit == "char" and buffer:
            buffer.append(" ")
        buffer.extend(units)
        while len(buffer) >= chunk_size:
            window, buffer = buffer[:chunk_size], buffer[chunk_size:]
            yield window, len(buffer)


def window_record(
    window: Sequence[str],
    unit: str,
    prompt_units: int,
    prompt_field: str = "prompt",
    completion_field: str = "completion",
) -> dict:
    """One record from a window: the first ``prompt_units`` units are the prompt, the rest the completion."""
    joiner = " " if unit == "word" else ""
    prompt = joiner.join(window[:prompt_units])
    completion = joiner.join(window[prompt_units:])
    if prompt and completion and unit == "word":
        completion = " " + completion
    return {prompt_field: prompt, completion_field: completion}


@dataclass
class ReferenceTaskStats:
    """What a build read and wrote."""

    language: str
    unit: str
    chunk_size: int
    prompt_units: int
    files: int
    documents: int
    chunks: int
    units_dropped: int  # after the last full window, when the whole input was read
    stopped_at_max_chunks: bool


def build_reference_task(
    paths: Sequence,
    language: str,
    chunk_size: int = 512,
    prompt_units: int = 1,
    unit: Optional[str] = None,
    fmt: str = "auto",
    text_field: str = "text",
    max_chunks: Optional[int] = None,
    prompt_field: str = "prompt",
    completion_field: str = "completion",
) -> Tuple[List[dict], ReferenceTaskStats]:
    """Records and stats for the reference task of ``language`` from ``paths`` (read in the given order).

    ``unit`` defaults to :func:`default_unit` of ``language``. ``max_chunks`` stops after that many windows.
    The output depends only on the inputs and the arguments.
    """
    unit = unit or default_unit(language)
    if unit not in UNITS:
        raise UserError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}")
    if chunk_size < 1:
        raise UserError(f"chunk_size must be at least 1, got {chunk_size}")
    if not 0 <= prompt_units < chunk_size:
        raise UserError(f"prompt_units must be in [0, chunk_size) = [0, {chunk_size}), got {prompt_units}")
    if max_chunks is not None and max_chunks < 1:
        raise UserError(f"max_chunks must be at least 1, got {max_chunks}")
    if not paths:
        raise UserError("no input files given")
    if prompt_field == completion_field:
        raise UserError(f"the prompt and completion fields must differ, both are {prompt_field!r}")
    counted = {"documents": 0}

    def documents():
        for path in paths:
            for document in read_documents(path, fmt, text_field):
                counted["documents"] += 1
                yield document

    records, left_over, stopped = [], 0, False
    for window, left_over in iter_windows(documents(), unit, chunk_size):
        records.append(window_record(window, unit, prompt_units, prompt_field, completion_field))
        if max_chunks is not None and len(records) == max_chunks:
            stopped = True
            break
    if not records:
        raise UserError(
            f"{', '.join(map(str, paths))}: fewer than {chunk_size} {unit}s in all, so not one window; "
            "lower --chunk_size or add text"
        )
    stats = ReferenceTaskStats(
        language=language,
        unit=unit,
        chunk_size=chunk_size,
        prompt_units=prompt_units,
        files=len(paths),
        documents=counted["documents"],
        chunks=len(records),
        units_dropped=0 if stopped else left_over,
        stopped_at_max_chunks=stopped,
    )
    return records, stats
