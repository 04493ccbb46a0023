"""Generate MASSIVE slot (and intent) predictions with a local model (+ PEFT adapter); writes {id, locale, utt, prompt, prediction} JSONL."""
import argparse

from transformers_align.data.jsonl import write_jsonl
from transformers_align.data.massive import add_massive_data_arguments, has_intents, load_massive, massive_prompts
from transformers_align.evaluation.generation import add_generation_arguments, generate_greedy, model_from_arguments


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    add_generation_arguments(parser, batch_size=16, max_new_tokens=128)
    add_massive_data_arguments(parser)
    parser.add_argument("--output-file", help="predictions JSONL (default massive_predictions_<lang>_<partition>.jsonl)")
    parser.add_argument("--no-intent", action="store_true",
                        help="use the slot-only prompt even when the data has intents (adapters trained without intents)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    records = load_massive(args.lang, args.partition, args.data_file, args.data_dir)[:args.max_examples]
    model, tokenizer = model_from_arguments(args)
    prompts = massive_prompts(records, tokenizer, with_intent=has_intents(records) and not args.no_intent)
    predictions = generate_greedy(model, tokenizer, prompts, args.batch_size, args.max_new_tokens,
                                  desc=f"MASSIVE {records[0].locale} {args.partition}")
    rows = [{"id": record.id, "locale": record.locale, "utt": record.utt, "prompt": prompt, "prediction": prediction}
            for record, prompt, prediction in zip(records, prompts, predictions)]
    path = write_jsonl(args.output_file or f"massive_predictions_{args.lang}_{args.partition}.jsonl", rows)
    print(f"wrote {len(rows)} predictions to {path}")
    return path


if __name__ == "__main__":
    main()
