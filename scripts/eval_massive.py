"""Score MASSIVE predictions (JSONL with id and prediction) against local gold data: slot micro-F1, exact match of
the slot sequences, intent accuracy and the intent-and-slots exact match (when the gold data has intents and the
predictions name them), and the counts scored, missing and skipped; the JSON states each definition."""

from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import write_json
from transformers_align.data.massive import resolve_locale
from transformers_align.errors import UserError
from transformers_align.evaluation.arguments import MassiveDataArguments, check_input_files, check_output_files
from transformers_align.evaluation.massive import read_predictions, score_predictions
from transformers_align.paths import refuse_output_over_inputs


@dataclass
class MassiveEvaluationArguments:
    pred_slots_file: str = option(aliases=["--pred-slots-file"], help="output of scripts.run_inference_massive")
    output_json: Optional[str] = option(None, aliases=["--output-json"], help="also write the metrics and counts here")
    max_examples: Optional[int] = option(
        None,
        aliases=["--max-examples"],
        help="score only the first N gold utterances (as run_inference_massive "
        "--max_examples); the rest are counted as skipped",
    )
    allow_missing: bool = option(
        False,
        aliases=["--allow-missing"],
        help="score gold utterances without a prediction as wrong instead of failing",
    )


def check(data: MassiveDataArguments, args: MassiveEvaluationArguments) -> None:
    refuse_output_over_inputs(
        {"--output_json": args.output_json}, {"--pred_slots_file": args.pred_slots_file, **data.inputs()}
    )
    data.check()
    check_input_files({"--pred_slots_file": args.pred_slots_file})
    check_output_files({"--output_json": args.output_json})
    if args.max_examples is not None and args.max_examples < 1:
        raise UserError(f"--max_examples {args.max_examples}: must be at least 1 (or left out for all)")


def parse_args(argv=None):
    return parse_arguments((MassiveDataArguments, MassiveEvaluationArguments), argv, __doc__)


def main(argv=None):
    data, args = parse_args(argv)
    check(data, args)
    gold = data.load()
    predictions = read_predictions(args.pred_slots_file, locale=resolve_locale(data.lang))
    scores = score_predictions(gold, predictions, args.allow_missing, args.pred_slots_file, args.max_examples)
    for name, value in scores.as_json().items():
        if name not in ("counts", "definitions", "note"):
            print(f"{name}: {'n/a' if value is None else value}")
    if scores.note:
        print(f"note: {scores.note}")
    counts = scores.counts
    print(
        f"scored {counts.scored} of {counts.total} gold utterance(s); {counts.missing} missing (scored as wrong); "
        f"{sum(counts.skipped.values())} skipped; {scores.unlocated} predicted span(s) not found in their utterance"
    )
    if args.output_json:
        write_json(args.output_json, scores.as_json())
    return scores


if __name__ == "__main__":
    exit_on_user_error(main)
