"""MGSM math word problems: read TSV/JSONL files, prompt as AdaMergeX does, extract the answer number, score.

Only the generated answer is parsed, never the prompt, and only up to the point where the model starts a
new "Question:"; the prediction is the last number there. An answer without a number is a parse failure:
counted and scored wrong, never read as 0.
"""

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from transformers_align.data.jsonl import DataFormatError, require_fields, string_field
from transformers_align.data.records import iter_json_records, iter_tsv_rows
from transformers_align.evaluation.counts import EvaluationCounts, skipped_beyond_limit
from transformers_align.evaluation.generation import generate_greedy

PROMPT_TEMPLATE = "Let's think step by step.\n\nQuestion: {question}\nAnswer: "
STOP_MARKERS = ("\nQuestion:",)
# An optional minus (ASCII or U+2212) not glued to a word, then digits with optional thousands commas
# ("1,000") and an optional decimal part; a number never starts right after a digit or a point.
_NUMBER = re.compile(r"(?:(?<![A-Za-z0-9_.])[-\u2212])?(?<![\d.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")


@dataclass
class MgsmItem:
    """One problem: the question and its numeric answer (MGSM's ``answer_number``)."""

    question: str
    answer_number: float


def parse_number(text: str) -> float:
    """A number as written in MGSM files and answers: thousands commas, decimals, ASCII or Unicode minus."""
    return float(text.replace(",", "").replace("\u2212", "-"))


def _answer_value(raw, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise DataFormatError(f"{where}: answer_number must be a number, got {raw!r}")
    try:
        return float(raw) if not isinstance(raw, str) else parse_number(raw.strip())
    except ValueError:
        raise DataFormatError(f"{where}: answer_number must be a number, got {raw!r}") from None


def load_mgsm(path) -> List[MgsmItem]:
    """Items of an MGSM file: ``question<TAB>answer_number`` lines (the official TSVs, no header needed),
    or JSON Lines / a JSON array of ``{question, answer_number}`` records (.json, .jsonl)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    items = []
    if path.suffix.lower() in (".json", ".jsonl"):
        for line_number, record in iter_json_records(path):
            where = f"{path}:{line_number}"
            require_fields(record, ("question", "answer_number"), where)
            items.append(
                MgsmItem(string_field(record, "question", where), _answer_value(record["answer_number"], where))
            )
    else:
        for line_number, (question, answer) in iter_tsv_rows(path, ("question", "answer_number"), tabs_in_first=True):
            if line_number == 1 and (question.lower(), answer.lower()) == ("question", "answer_number"):
                continue  # an optional header line
            where = f"{path}:{line_number}"
            if not question.strip():
                raise DataFormatError(f"{where}: empty question")
            items.append(MgsmItem(question, _answer_value(answer, where)))
    if not items:
        raise DataFormatError(f"{path}: no MGSM items")
    return items


def build_prompt(question: str) -> str:
    """AdaMergeX's MGSM prompt."""
    return PROMPT_TEMPLATE.format(question=question)


def answer_part(generation: str, stop_markers: Sequence[str] = STOP_MARKERS) -> str:
    """The generated answer up to the first stop marker (the model going on with a new question)."""
    cut = min((generation.find(marker) for marker in stop_markers if marker in generation), default=-1)
    return generation if cut < 0 else generation[:cut]


def extract_number(generation: str, stop_markers: Sequence[str] = STOP_MARKERS) -> Optional[float]:
    """The last number of the answer part of ``generation``, or None when it has none."""
    numbers = _NUMBER.findall(answer_part(generation, stop_markers))
    return parse_number(numbers[-1]) if numbers else None


def _plain(value: Optional[float]):
    """Integral floats as ints, for readable JSON."""
    return int(value) if value is not None and float(value).is_integer() else value


def score_mgsm(
    items: Sequence[MgsmItem],
    generations: Sequence[str],
    stop_markers: Sequence[str] = STOP_MARKERS,
    skipped: Optional[Dict[str, int]] = None,
) -> dict:
    """Accuracy of ``generations`` (answers only, prompt excluded) against ``items``, and per-item records.

    A generation without a number counts as a parse failure and as wrong. ``skipped`` (reason -> count of
    items left out on purpose) goes into the metrics' counts.
    """
    if len(items) != len(generations):
        raise ValueError(f"{len(items)} items but {len(generations)} generations")
    records, correct, failures = [], 0, 0
    for item, generation in zip(items, generations):
        prediction = extract_number(generation, stop_markers)
        is_correct = prediction is not None and math.isclose(prediction, item.answer_number, rel_tol=0, abs_tol=1e-6)
        correct += is_correct
        failures += prediction is None
        records.append(
            {
                "question": item.question,
                "answer_number": _plain(item.answer_number),
                "generation": generation,
                "prediction": _plain(prediction),
                "correct": is_correct,
            }
        )
    metrics = {
        "accuracy": correct / len(items) if items else 0.0,
        "correct": correct,
        "parse_failures": failures,
        "counts": EvaluationCounts(scored=len(items), skipped=dict(skipped or {})).as_json(),
    }
    return {"metrics": metrics, "records": records}


def evaluate_mgsm(
    model,
    tokenizer,
    items: Sequence[MgsmItem],
    batch_size: int = 8,
    max_new_tokens: int = 512,
    stop_markers: Sequence[str] = STOP_MARKERS,
    max_examples: Optional[int] = None,
) -> dict:
    """Generate greedily for the first ``max_examples`` (default all) items (batched, left-padded, KV cache)
    and score the answers; the items left out are counted as skipped."""
    skipped = skipped_beyond_limit(len(items), max_examples)
    items = items[:max_examples]
    prompts = [build_prompt(item.question) for item in items]
    generations = generate_greedy(
        model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens, desc="MGSM"
    )
    return score_mgsm(items, generations, stop_markers, skipped)
