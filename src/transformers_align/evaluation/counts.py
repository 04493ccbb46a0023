"""What every evaluator's numbers stand on: how many items it scored, found without a prediction, and left out.

Every metric is computed over ``total = scored + missing`` gold items: an item without a prediction counts
as wrong, never as absent from the denominator. Missing predictions are an error unless the caller allows
them (``--allow_missing``). Items left out on purpose (``--max_examples``, records a reader skips) are not
in ``total``; they are counted by reason in ``skipped``.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Mapping, Sequence

from transformers_align.data.jsonl import DataFormatError


class MissingPredictionsError(DataFormatError):
    """A prediction file lacks predictions for some gold items (and they were not allowed)."""


@dataclass
class EvaluationCounts:
    scored: int
    missing: int = 0
    skipped: Dict[str, int] = field(default_factory=dict)  # reason -> items left out on purpose

    @property
    def total(self) -> int:
        """The denominator of every metric: scored plus missing items."""
        return self.scored + self.missing

    def as_json(self) -> dict:
        return {
            "total": self.total,
            "scored": self.scored,
            "missing": self.missing,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
        }


def skipped_beyond_limit(available: int, limit) -> Dict[str, int]:
    """The ``skipped`` entry for items past ``--max_examples`` (empty when nothing was cut)."""
    cut = available - min(available, limit) if limit is not None else 0
    return {"beyond --max_examples": cut} if cut else {}


def merge_skipped(*parts: Mapping[str, int]) -> Dict[str, int]:
    total = Counter()
    for part in parts:
        total.update(part)
    return dict(total)


def check_missing(missing_ids: Sequence, total: int, predictions_file, allow_missing: bool) -> None:
    """Raise :class:`MissingPredictionsError` naming the file and the count, unless missing items are allowed."""
    if missing_ids and not allow_missing:
        raise MissingPredictionsError(
            f"{predictions_file}: no prediction for {len(missing_ids)} of {total} gold item(s) "
            f"(first: {missing_ids[0]}); "
            "pass --allow_missing to score them as wrong"
        )
