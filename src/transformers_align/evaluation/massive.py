"""MASSIVE scoring: BIO tags over MASSIVE's token segmentation, prediction parsing, slot F1, exact
match of the slot sequences, and intent accuracy with the intent-and-slots exact match when the
predictions name intents (each JSON carries the definitions, ``DEFINITIONS``)."""

import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from transformers_align.data.jsonl import DataFormatError, iter_jsonl, require_fields, string_field
from transformers_align.data.massive import INTENT_KEY, NO_SLOTS, MassiveRecord, has_intents, parse_annotation
from transformers_align.errors import UserError
from transformers_align.evaluation.counts import EvaluationCounts, check_missing, skipped_beyond_limit
from transformers_align.extras import require

# MASSIVE segments these locales into characters, keeping runs of ASCII (Latin words, numbers) whole.
# The generation limit of every MASSIVE prediction (run report and scripts.run_inference_massive), so that one
# adapter gets the same counts from both. Gold answers (format_target, intent included) in data_example/massive
# are at most 42 SmolLM2 tokens and 110 tokens of the byte-level tiny tokenizer: 128 truncates none of them,
# where 48 truncated long answers into malformed ones.
MASSIVE_MAX_NEW_TOKENS = 128
CHARACTER_SEGMENTED_LOCALES = frozenset({"ja-JP", "zh-CN", "zh-TW"})
_CHARACTER_TOKEN = re.compile(r"[!-~]+|\S")
_PART_SEPARATOR = re.compile(r"\s*(?:;|\n)\s*")
_PART = re.compile(r"(\w+)\s*:\s*(\S.*)", re.DOTALL)


def segment(text: str, locale: str) -> List[str]:
    """MASSIVE's tokens: whitespace words, or characters (ASCII runs whole) for ja-JP, zh-CN and zh-TW."""
    if locale in CHARACTER_SEGMENTED_LOCALES:
        return _CHARACTER_TOKEN.findall(text)
    return text.split()


def gold_tags(annot_utt: str, locale: str) -> Tuple[List[str], List[str]]:
    """The utterance tokens and their BIO tags (``B-time``, ``I-time``, ``O``) from ``annot_utt``."""
    tokens, tags = [], []
    for text, label in parse_annotation(annot_utt):
        words = segment(text, locale)
        tokens.extend(words)
        tags.extend(["O"] * len(words) if label is None else [f"B-{label}"] + [f"I-{label}"] * (len(words) - 1))
    return tokens, tags


@dataclass
class ParsedPrediction:
    """A generated answer split into its intent, ``(type, words)`` slots and the parts that could not be parsed."""

    intent: Optional[str] = None
    slots: List[Tuple[str, str]] = field(default_factory=list)
    malformed: List[str] = field(default_factory=list)


def parse_prediction(text: str) -> ParsedPrediction:
    """Parse ``"intent: x; type: words; ..."`` (parts separated by ";" or newlines; ``None`` means no slots).

    Every part that is neither ``None`` nor ``name: words`` with a one-word name, and every intent part
    after the first, is kept in ``malformed``: nothing is dropped silently.
    """
    parsed = ParsedPrediction()
    for part in _PART_SEPARATOR.split(text.strip()):
        if not part or part.casefold() == NO_SLOTS.casefold():
            continue
        match = _PART.fullmatch(part)
        if match is None:
            parsed.malformed.append(part)
        elif match.group(1) == INTENT_KEY:
            if parsed.intent is None:
                parsed.intent = match.group(2).strip()
            else:
                parsed.malformed.append(part)
        else:
            parsed.slots.append((match.group(1), " ".join(match.group(2).split())))
    return parsed


def tag_spans(tokens: Sequence[str], slots: Sequence[Tuple[str, str]], locale: str) -> Tuple[List[str], int]:
    """BIO tags for predicted slots placed in ``tokens``, and how many could not be placed.

    Each span is matched case-insensitively as a token subsequence, at its leftmost occurrence whose
    tokens are still untagged (a repeated span takes the next occurrence).
    """
    lowered = [token.casefold() for token in tokens]
    tags, unlocated = ["O"] * len(tokens), 0
    for label, words in slots:
        span = [token.casefold() for token in segment(words, locale)]
        start = (
            next(
                (
                    i
                    for i in range(len(tokens) - len(span) + 1)
                    if lowered[i : i + len(span)] == span and all(tag == "O" for tag in tags[i : i + len(span)])
                ),
                None,
            )
            if span
            else None
        )
        if start is None:
            unlocated += 1
            continue
        tags[start : start + len(span)] = [f"B-{label}"] + [f"I-{label}"] * (len(span) - 1)
    return tags, unlocated


DEFINITIONS = {
    "slot_micro_f1": "seqeval micro-F1 of the predicted BIO slot tags on MASSIVE's tokens, over all gold utterances",
    "exact_match": "share of gold utterances whose predicted slot tag sequence equals the gold one; the intent "
    "is not compared (mid-align's ex_match_acc)",
    "exact_match_with_intent": "share of gold utterances with the gold intent and the gold slot tag sequence; "
    "null when intents are not scored",
    "intent_accuracy": "share of gold utterances whose predicted intent is the gold intent (no intent named: wrong); "
    "null when intents are not scored",
}
NO_INTENT_GOLD = "the gold data has no intents: intents are not scored"
NO_INTENT_PREDICTED = (
    "no prediction names an intent (slot-only predictions, as mid-align's): intents are not scored, and "
    "exact_match compares the slot sequences alone"
)


@dataclass
class MassiveScores:
    """The scores (``DEFINITIONS``; the intent ones None when intents are not scored, ``note`` says why),
    diagnostics, and the counts they stand on (every metric is over ``counts.total`` gold utterances)."""

    slot_micro_f1: float
    exact_match: float
    exact_match_with_intent: Optional[float]
    intent_accuracy: Optional[float]
    malformed: int
    unlocated: int
    counts: EvaluationCounts
    note: Optional[str] = None

    def as_json(self) -> dict:
        return {
            "slot_micro_f1": self.slot_micro_f1,
            "exact_match": self.exact_match,
            "exact_match_with_intent": self.exact_match_with_intent,
            "intent_accuracy": self.intent_accuracy,
            "note": self.note,
            "definitions": DEFINITIONS,
            "malformed": self.malformed,
            "unlocated": self.unlocated,
            "counts": self.counts.as_json(),
        }


def score_predictions(
    gold: Sequence[MassiveRecord],
    predictions: Mapping[str, str],
    allow_missing: bool = False,
    source: str = "predictions",
    max_examples: Optional[int] = None,
) -> MassiveScores:
    """Score predictions (id -> generated text) against gold records matched by id.

    ``exact_match`` compares the slot tag sequences. Intents are scored (``intent_accuracy``,
    ``exact_match_with_intent``) when every gold record has an intent and at least one prediction names
    one; a prediction without an intent then counts as a wrong intent. A prediction that cannot be parsed
    is wrong, never left out. A gold record without a prediction raises :class:`MissingPredictionsError`
    naming ``source``, unless ``allow_missing``: then it is scored as an empty answer that is never an
    exact match. A prediction whose
    id is not in ``gold`` is an error. With ``max_examples`` only the first N gold records are scored
    (predictions for the others are ignored) and the rest are counted as skipped.
    """
    if not gold:
        raise UserError("no gold records to score")
    gold_ids = {record.id for record in gold}
    unknown = [prediction_id for prediction_id in predictions if prediction_id not in gold_ids]
    if unknown:
        raise DataFormatError(
            f"{len(unknown)} prediction id(s) not in the gold data, e.g. {unknown[:5]}: "
            "check --lang, --partition and the data file"
        )
    skipped = skipped_beyond_limit(len(gold), max_examples)
    gold = gold[:max_examples]
    missing = [record.id for record in gold if record.id not in predictions]
    check_missing(missing, len(gold), source, allow_missing)
    parsed = {record.id: parse_prediction(predictions.get(record.id, "")) for record in gold}
    note = None
    if not has_intents(gold):
        note = NO_INTENT_GOLD
    elif all(prediction.intent is None for prediction in parsed.values()):
        note = NO_INTENT_PREDICTED
    true_tags, predicted_tags, slots_exact, both_exact, intent_hits, unlocated = [], [], 0, 0, 0, 0
    for record in gold:
        prediction = parsed[record.id]
        tokens, gold_sequence = gold_tags(record.annot_utt, record.locale)
        predicted_sequence, missed = tag_spans(tokens, prediction.slots, record.locale)
        unlocated += missed
        intent_ok = note is None and prediction.intent == record.intent
        intent_hits += intent_ok
        # A missing prediction is wrong, even where the gold has no slot to miss.
        sequence_ok = predicted_sequence == gold_sequence and record.id in predictions
        slots_exact += sequence_ok
        both_exact += sequence_ok and intent_ok
        true_tags.append(gold_sequence)
        predicted_tags.append(predicted_sequence)
    return MassiveScores(
        slot_micro_f1=float(_f1_score()(true_tags, predicted_tags, average="micro", zero_division=0)),
        exact_match=slots_exact / len(gold),
        exact_match_with_intent=None if note else both_exact / len(gold),
        intent_accuracy=None if note else intent_hits / len(gold),
        malformed=sum(len(p.malformed) for p in parsed.values()),
        unlocated=unlocated,
        counts=EvaluationCounts(scored=len(gold) - len(missing), missing=len(missing), skipped=skipped),
        note=note,
    )


def read_predictions(path, locale: Optional[str] = None) -> Dict[str, str]:
    """``id -> prediction`` from an inference JSONL file; duplicate ids and other locales are errors."""
    predictions, first_seen = {}, {}
    for line_number, raw in iter_jsonl(path):
        where = f"{path}:{line_number}"
        require_fields(raw, ("id", "prediction"), where)
        prediction_id = string_field(raw, "id", where)
        if locale is not None and raw.get("locale", locale) != locale:
            raise DataFormatError(f"{where}: field 'locale' is {raw['locale']!r}, evaluating {locale}")
        if prediction_id in first_seen:
            raise DataFormatError(
                f"{where}: duplicate id {prediction_id!r} (first on line {first_seen[prediction_id]})"
            )
        first_seen[prediction_id] = line_number
        predictions[prediction_id] = string_field(raw, "prediction", where, allow_empty=True)
    return predictions


def _f1_score():
    return require("seqeval.metrics", "the MASSIVE slot F1").f1_score
