"""JSON Lines reading with file:line errors, field checks, and atomic writing (temporary file, then rename)."""

import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Tuple

from transformers_align.errors import UserError


class DataFormatError(UserError):
    """A data file that does not have the expected format; the message names the file, line and field."""


def iter_text_lines(path) -> Iterator[Tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file; a byte that is not UTF-8 is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                yield line_number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    f"{path}:{line_number}: not UTF-8 (byte 0x{raw[error.start]:02x} at column "
                    f"{len(raw[: error.start].decode('utf-8', 'replace')) + 1})"
                ) from None


def iter_jsonl(path) -> Iterator[Tuple[int, dict]]:
    """Yield ``(line_number, object)`` for every non-blank line of a JSON Lines file (1-based line numbers)."""
    for line_number, line in iter_text_lines(path):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(
                f"{path}:{line_number}: malformed JSON ({error.msg} at column {error.colno})"
            ) from None
        if not isinstance(value, dict):
            raise DataFormatError(f"{path}:{line_number}: expected a JSON object, got {type(value).__name__}")
        yield line_number, value


def read_json(path):
    """The value of a whole-file JSON document; malformed JSON or a non-UTF-8 byte is an error naming the
    file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataFormatError(f"{path}:{line}: not UTF-8 (byte 0x{raw[error.start]:02x})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path}:{error.lineno}: malformed JSON ({error.msg} at column {error.colno})") from None


def require_fields(record: dict, fields: Iterable[str], where: str) -> None:
    """Raise :class:`DataFormatError` naming ``where`` and the first of ``fields`` missing from ``record``."""
    for field in fields:
        if field not in record:
            raise DataFormatError(f"{where}: missing field {field!r}")


def string_field(record: dict, field: str, where: str, allow_empty: bool = False, accept_numbers: bool = True) -> str:
    """``record[field]`` as a string; numbers are accepted as their text (ids) unless ``accept_numbers`` is False
    (text to train on), anything else is an error naming the field."""
    value = record[field]
    if accept_numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise DataFormatError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataFormatError(f"{where}: field {field!r} is empty")
    return value


def write_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, so readers
    never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_jsonl(path, rows: Iterable[dict]) -> Path:
    """Write ``rows`` as JSON Lines (UTF-8, not ASCII-escaped), atomically."""
    return write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_json(path, value) -> Path:
    """Write ``value`` as indented JSON, atomically."""
    return write_atomic(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")
