"""MASSIVE slot filling data: validated JSONL records, locale map, prompts, targets and mid-align training records."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from transformers_align.data.chat import chat_prompt
from transformers_align.data.jsonl import DataFormatError, iter_jsonl, require_fields, string_field

# mid-align's 2-letter -> MASSIVE locale map (its utils.py lists "id" twice; a dict keeps one).
MASSIVE_LANG_MAP = {
    "en": "en-US",
    "af": "af-ZA",
    "am": "am-ET",
    "ar": "ar-SA",
    "az": "az-AZ",
    "bn": "bn-BD",
    "cy": "cy-GB",
    "da": "da-DK",
    "de": "de-DE",
    "el": "el-GR",
    "es": "es-ES",
    "fa": "fa-IR",
    "fi": "fi-FI",
    "fr": "fr-FR",
    "he": "he-IL",
    "hi": "hi-IN",
    "hu": "hu-HU",
    "hy": "hy-AM",
    "id": "id-ID",
    "is": "is-IS",
    "it": "it-IT",
    "ja": "ja-JP",
    "jv": "jv-ID",
    "ka": "ka-GE",
    "km": "km-KH",
    "kn": "kn-IN",
    "ko": "ko-KR",
    "lv": "lv-LV",
    "ml": "ml-IN",
    "mn": "mn-MN",
    "pl": "pl-PL",
    "pt": "pt-PT",
    "ru": "ru-RU",
    "sw": "sw-KE",
    "th": "th-TH",
    "tl": "tl-PH",
    "tr": "tr-TR",
    "ur": "ur-PK",
    "zh": "zh-CN",
}
REQUIRED_FIELDS = ("id", "locale", "partition", "utt", "annot_utt")
PARTITIONS = ("train", "dev", "test")
PARTITION_ALIASES = {"validation": "dev"}  # the Hub's split name for MASSIVE's "dev"

INTENT_KEY = "intent"
NO_SLOTS = "None"
_TASK = "Given a command from the user, a voice assistant {what} needed to carry it out. "
SYSTEM_PROMPT_SLOTS = _TASK.format(what="extracts the entities") + (
    'Answer "type: words" for each entity, words copied from the command, separated by "; ", or None if there is none.'
)
SYSTEM_PROMPT_INTENT_AND_SLOTS = _TASK.format(what="finds the intent and extracts the entities") + (
    'Answer "intent: name", then "type: words" for each entity, words copied from the command, separated by "; ".'
)

_SLOT = re.compile(r"\[\s*([^\[\]:\s]+)\s*:\s*([^\[\]]*?)\s*\]")


@dataclass(frozen=True)
class MassiveRecord:
    """One MASSIVE utterance; ``intent`` is None when the data has no intents; ``source`` is "file:line"."""

    id: str
    locale: str
    partition: str
    utt: str
    annot_utt: str
    intent: Optional[str] = None
    scenario: Optional[str] = None
    source: str = field(default="", compare=False)

    @property
    def slots(self) -> List[Tuple[str, str]]:
        """The ``(type, words)`` annotations of ``annot_utt``, in order."""
        return [(label, text) for text, label in parse_annotation(self.annot_utt) if label is not None]


def parse_annotation(annot_utt: str) -> List[Tuple[str, Optional[str]]]:
    """Split ``"wake me at [time : five am]"`` into ``[("wake me at", None), ("five am", "time")]``.

    Outside text has the label None. Raises ValueError for stray or nested brackets and empty slots.
    """
    segments, position = [], 0
    for match in _SLOT.finditer(annot_utt):
        _add_outside(segments, annot_utt[position : match.start()])
        label, text = match.group(1), " ".join(match.group(2).split())
        if not text:
            raise ValueError(f"slot {label!r} has no words in {annot_utt!r}")
        segments.append((text, label))
        position = match.end()
    _add_outside(segments, annot_utt[position:])
    return segments


def _add_outside(segments, text: str) -> None:
    if "[" in text or "]" in text:
        raise ValueError(f"unbalanced or malformed slot brackets near {text.strip()!r}")
    if text.strip():
        segments.append((" ".join(text.split()), None))


def resolve_locale(lang: str) -> str:
    """A 2-letter code from :data:`MASSIVE_LANG_MAP`, or a full MASSIVE locale such as ``zh-TW``, as a locale."""
    if lang in MASSIVE_LANG_MAP:
        return MASSIVE_LANG_MAP[lang]
    if re.fullmatch(r"[a-z]{2,3}-[A-Z]{2}", lang):
        return lang
    raise ValueError(f"unknown language {lang!r}: use a locale like 'de-DE' or one of {', '.join(MASSIVE_LANG_MAP)}")


def normalize_partition(partition: str) -> str:
    """``train``, ``dev`` or ``test`` (``validation`` is accepted for ``dev``)."""
    partition = PARTITION_ALIASES.get(partition, partition)
    if partition not in PARTITIONS:
        raise ValueError(f"unknown partition {partition!r}: use one of {', '.join(PARTITIONS)} (or 'validation')")
    return partition


def read_massive_jsonl(path) -> List[MassiveRecord]:
    """All records of a MASSIVE JSONL file (official release schema), checked line by line."""
    records = []
    for line_number, raw in iter_jsonl(path):
        where = f"{path}:{line_number}"
        require_fields(raw, REQUIRED_FIELDS, where)
        values = {name: string_field(raw, name, where) for name in REQUIRED_FIELDS}
        for optional in ("intent", "scenario"):
            present = raw.get(optional) not in (None, "")
            values[optional] = string_field(raw, optional, where) if present else None
        try:
            parse_annotation(values["annot_utt"])
        except ValueError as error:
            raise DataFormatError(f"{where}: field 'annot_utt': {error}") from None
        records.append(MassiveRecord(**values, source=where))
    return records


def massive_file(lang: str, data_file=None, data_dir=None) -> Path:
    """The JSONL file to read: ``data_file``, or ``<data_dir>/<locale>.jsonl`` as in the official release."""
    if data_file:
        return Path(data_file)
    if data_dir:
        return Path(data_dir) / f"{resolve_locale(lang)}.jsonl"
    raise ValueError("give a MASSIVE JSONL file (--data_file) or the folder of <locale>.jsonl files (--data_dir)")


def load_massive(lang: str, partition: str, data_file=None, data_dir=None) -> List[MassiveRecord]:
    """The records of one locale and partition, in file order; ids must be unique among them."""
    locale, partition = resolve_locale(lang), normalize_partition(partition)
    path = massive_file(lang, data_file, data_dir)
    everything = read_massive_jsonl(path)
    records = [r for r in everything if r.locale == locale and normalize_partition(r.partition) == partition]
    if not records:
        found = sorted({(r.locale, r.partition) for r in everything})
        raise ValueError(
            f"{path}: no records for locale {locale} and partition {partition}; "
            f"found {', '.join('/'.join(pair) for pair in found) or 'none'}"
        )
    seen = {}
    for record in records:
        if record.id in seen:
            raise DataFormatError(f"{record.source}: duplicate id {record.id!r} (first at {seen[record.id]})")
        seen[record.id] = record.source
    return records


def read_partition(paths: Sequence, partition: str) -> List[MassiveRecord]:
    """The records of one partition from MASSIVE files of any locales, in file order."""
    partition = normalize_partition(partition)
    records = [r for path in paths for r in read_massive_jsonl(path) if normalize_partition(r.partition) == partition]
    if not records:
        raise DataFormatError(f"no {partition} records in {', '.join(str(path) for path in paths)}")
    return records


def has_intents(records: Sequence[MassiveRecord]) -> bool:
    """Whether every record carries an intent (then prompts and targets include it)."""
    return bool(records) and all(record.intent for record in records)


def system_prompt(with_intent: bool) -> str:
    """The system prompt used in training and inference; it asks for the intent when ``with_intent``."""
    return SYSTEM_PROMPT_INTENT_AND_SLOTS if with_intent else SYSTEM_PROMPT_SLOTS


def format_target(slots: Sequence[Tuple[str, str]], intent: Optional[str] = None) -> str:
    """``"intent: alarm_set; time: five am; date: friday"``; without intent ``"time: five am"`` or ``"None"``."""
    parts = [f"{INTENT_KEY}: {intent}"] if intent else []
    for label, words in slots:
        if label == INTENT_KEY:
            raise ValueError(f"slot type {INTENT_KEY!r} is reserved for the intent part of the target")
        parts.append(f"{label}: {words}")
    return "; ".join(parts) if parts else NO_SLOTS


def massive_prompts(records: Sequence[MassiveRecord], tokenizer, with_intent: bool) -> List[str]:
    """The chat prompt (system prompt + utterance) of every record, as text."""
    system = system_prompt(with_intent)
    return [chat_prompt(tokenizer, system, record.utt) for record in records]


def training_records(
    records: Sequence[MassiveRecord], tokenizer, pairs: Sequence[dict] = (), with_intent: Optional[bool] = None
) -> List[dict]:
    """mid-align training rows: ``{"prefix": chat prompt, "text": target + end-of-turn}``.

    With ``pairs`` (dicts as :func:`transformers_align.data.records.load_pairs` returns them), row i also
    gets ``text_parallel_0`` and ``text_parallel_1`` from pair ``i % len(pairs)``: as in mid-align, the
    pair is unrelated to the task row it travels with. Pairs beyond the number of records travel with no
    row (the training reader keeps pairs as a stream of their own: give them as ``--alignment_file``).
    ``with_intent`` defaults to whether all records have intents. The end-of-turn string is the
    tokenizer's EOS token (``<|eot_id|>`` for Llama-3 Instruct and the embedded tokenizer).
    """
    with_intent = has_intents(records) if with_intent is None else with_intent
    if with_intent and not has_intents(records):
        raise ValueError("with_intent needs an intent on every record")
    prompts = massive_prompts(records, tokenizer, with_intent)
    rows = []
    for index, (record, prefix) in enumerate(zip(records, prompts)):
        row = {
            "prefix": prefix,
            "text": format_target(record.slots, record.intent if with_intent else None) + tokenizer.eos_token,
        }
        if pairs:
            pair = pairs[index % len(pairs)]
            row.update(text_parallel_0=pair["text_parallel_0"], text_parallel_1=pair["text_parallel_1"])
        rows.append(row)
    return rows


def parallel_training_records(
    records: Sequence[MassiveRecord],
    translations: Sequence[MassiveRecord],
    tokenizer,
    with_intent: Optional[bool] = None,
) -> List[dict]:
    """Parallel task rows for the consistency objective: ``{"prefix", "prefix_translated", "text"}``.

    MASSIVE's ids are parallel across locales: each record of ``records`` (the source language) whose id has a
    translation in ``translations`` gives one row, its chat prompt, the translation's chat prompt, and the
    source record's target (the same target on both sides). Records without a translation are left out.
    """
    with_intent = has_intents(records) if with_intent is None else with_intent
    by_id = {record.id: record for record in translations}
    matched = [(record, by_id[record.id]) for record in records if record.id in by_id]
    if not matched:
        raise ValueError("no record id of the source language has a translation: MASSIVE files of one partition?")
    sources = massive_prompts([source for source, _ in matched], tokenizer, with_intent)
    translated = massive_prompts([translation for _, translation in matched], tokenizer, with_intent)
    return [
        {
            "prefix": prefix,
            "prefix_translated": prefix_translated,
            "text": format_target(source.slots, source.intent if with_intent else None) + tokenizer.eos_token,
        }
        for (source, _), prefix, prefix_translated in zip(matched, sources, translated)
    ]
