"""Readers of the ICL datasets' local files (the layouts AFP reads), each record's gold as a candidate index.

A malformed line (wrong column count, unknown label, missing field) is an error naming the file, line
and field; a record with an empty text field is skipped, and the skips are counted (into the caller's
``skips`` when given) and logged.
"""

from typing import List, Optional, Sequence

from transformers_align.data.jsonl import DataFormatError, iter_jsonl, require_fields, string_field
from transformers_align.data.records import SkipCounter, iter_tsv_rows

XNLI_LABELS = ("entailment", "neutral", "contradiction")
XSTORYCLOZE_COLUMNS = (
    "InputStoryid",
    "InputSentence1",
    "InputSentence2",
    "InputSentence3",
    "InputSentence4",
    "RandomFifthSentenceQuiz1",
    "RandomFifthSentenceQuiz2",
    "AnswerRightEnding",
)


def _label(value, allowed: Sequence, where: str, field: str) -> int:
    """Index of ``value`` (int or its string form) in ``allowed``."""
    text = str(value).strip()
    names = [str(a) for a in allowed]
    if isinstance(value, bool) or text not in names:
        raise DataFormatError(f"{where}: field {field!r} is {value!r}; expected one of {', '.join(names)}")
    return names.index(text)


def _keep(record: dict, text_fields: Sequence[str], skips: SkipCounter) -> bool:
    empty = [name for name in text_fields if not record[name].strip()]
    if empty:
        skips.add(f"empty {empty[0]}")
    return not empty


def _finish(path, records: List[dict], skips: SkipCounter) -> List[dict]:
    skips.log(str(path))
    if not records:
        raise DataFormatError(f"{path}: no usable record")
    return records


def read_xnli(path, skips: Optional[SkipCounter] = None) -> List[dict]:
    """XNLI as AFP reads it: ``premise<TAB>hypothesis<TAB>label`` without header
    (label: entailment/neutral/contradiction)."""
    records, skips = [], skips if skips is not None else SkipCounter()
    for line_number, (premise, hypothesis, label) in iter_tsv_rows(path, ("premise", "hypothesis", "label")):
        if line_number == 1 and label == "label":
            continue  # an optional header line
        record = {
            "premise": premise,
            "hypothesis": hypothesis,
            "label": _label(label, XNLI_LABELS, f"{path}:{line_number}", "label"),
        }
        if _keep(record, ("premise", "hypothesis"), skips):
            records.append(record)
    return _finish(path, records, skips)


def read_pawsx(path, skips: Optional[SkipCounter] = None) -> List[dict]:
    """PAWS-X ``x-final/{lang}/{dev,test}_2k.tsv``: header, then ``id, sentence1, sentence2, label`` (1 = paraphrase).

    The gold index follows AFP's candidate order (Yes, No): label 1 -> 0, label 0 -> 1.
    """
    records, skips = [], skips if skips is not None else SkipCounter()
    for line_number, (_, sentence1, sentence2, label) in iter_tsv_rows(
        path, ("id", "sentence1", "sentence2", "label"), header=True
    ):
        record = {
            "sentence1": sentence1,
            "sentence2": sentence2,
            "label": _label(label, ("1", "0"), f"{path}:{line_number}", "label"),
        }
        if _keep(record, ("sentence1", "sentence2"), skips):
            records.append(record)
    return _finish(path, records, skips)


def read_xstorycloze(path, skips: Optional[SkipCounter] = None) -> List[dict]:
    """XStoryCloze ``spring2016.val.{lang}.tsv.split_20_80_{train,eval}.tsv``: header, then story id, four
    sentences, two endings and the right ending (1 or 2)."""
    records, skips = [], skips if skips is not None else SkipCounter()
    for line_number, fields in iter_tsv_rows(path, XSTORYCLOZE_COLUMNS, header=True):
        record = {f"sentence{i}": fields[i] for i in range(1, 5)}
        record.update(
            ending1=fields[5],
            ending2=fields[6],
            label=_label(fields[7], ("1", "2"), f"{path}:{line_number}", "AnswerRightEnding"),
        )
        if _keep(record, [f"sentence{i}" for i in range(1, 5)] + ["ending1", "ending2"], skips):
            records.append(record)
    return _finish(path, records, skips)


def read_xcopa(path, skips: Optional[SkipCounter] = None) -> List[dict]:
    """XCOPA ``{val,test}.{lang}.jsonl``: premise, choice1, choice2, question (cause/effect), label (0 or 1)."""
    records, skips = [], skips if skips is not None else SkipCounter()
    for line_number, raw in iter_jsonl(path):
        where = f"{path}:{line_number}"
        require_fields(raw, ("premise", "choice1", "choice2", "question", "label"), where)
        record = {name: string_field(raw, name, where, allow_empty=True) for name in ("premise", "choice1", "choice2")}
        record["question"] = ("cause", "effect")[_label(raw["question"], ("cause", "effect"), where, "question")]
        record["label"] = _label(raw["label"], (0, 1), where, "label")
        if _keep(record, ("premise", "choice1", "choice2"), skips):
            records.append(record)
    return _finish(path, records, skips)


def read_xwinograd(path, skips: Optional[SkipCounter] = None) -> List[dict]:
    """XWinograd JSON Lines: option1, option2, answer (1 or 2, int or string) and either ``sentence_part1`` /
    ``sentence_part2`` (AFP) or the official ``sentence`` with one ``_`` where the option goes."""
    records, skips = [], skips if skips is not None else SkipCounter()
    for line_number, raw in iter_jsonl(path):
        where = f"{path}:{line_number}"
        require_fields(raw, ("option1", "option2", "answer"), where)
        if "sentence" in raw:
            sentence = string_field(raw, "sentence", where)
            if sentence.count("_") != 1:
                raise DataFormatError(
                    f"{where}: field 'sentence' must hold exactly one '_' (the blank), found {sentence.count('_')}"
                )
            part1, part2 = sentence.split("_")
        else:
            require_fields(raw, ("sentence_part1", "sentence_part2"), where)
            part1 = string_field(raw, "sentence_part1", where, allow_empty=True)
            part2 = string_field(raw, "sentence_part2", where, allow_empty=True)
        record = {
            "sentence_part1": part1,
            "sentence_part2": part2,
            "option1": string_field(raw, "option1", where, allow_empty=True),
            "option2": string_field(raw, "option2", where, allow_empty=True),
            "label": _label(raw["answer"], (1, 2), where, "answer"),
        }
        if _keep(record, ("option1", "option2"), skips):
            records.append(record)
    return _finish(path, records, skips)
