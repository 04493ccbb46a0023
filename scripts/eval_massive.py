"""Score MASSIVE predictions (JSONL with id and prediction) against local gold data: slot micro-F1, exact match, intent accuracy."""
import argparse

from transformers_align.data.jsonl import write_json
from transformers_align.data.massive import add_massive_data_arguments, load_massive, resolve_locale
from transformers_align.evaluation.massive import read_predictions, score_predictions


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pred-slots-file", required=True, help="output of scripts.run_inference_massive")
    add_massive_data_arguments(parser)
    parser.add_argument("--output-json", help="also write the metrics to this JSON file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    gold = load_massive(args.lang, args.partition, args.data_file, args.data_dir)
    scores = score_predictions(gold, read_predictions(args.pred_slots_file, locale=resolve_locale(args.lang)))
    for name, value in scores.as_json().items():
        print(f"{name}: {'n/a (no intents in the gold data or in the predictions)' if value is None else value}")
    print(f"scored {scores.scored} utterance(s); {scores.unlocated} predicted span(s) not found in their utterance")
    if scores.missing:
        print(f"WARNING: {scores.missing} gold utterance(s) have no prediction and were not scored")
    if args.output_json:
        write_json(args.output_json, scores.as_json())
    return scores


if __name__ == "__main__":
    main()
