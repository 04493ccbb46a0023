"""Evaluate a base model, optionally with a (merged) PEFT adapter, on an MGSM-format file: answer accuracy."""
import argparse
import json

from transformers_align.data.jsonl import write_json, write_jsonl
from transformers_align.evaluation.generation import load_model_and_tokenizer
from transformers_align.evaluation.mgsm import evaluate_mgsm, load_mgsm


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="MGSM accuracy with AdaMergeX's prompt (\"Let's think step by step.\\n\\nQuestion: ...\\n"
        "Answer: \"), greedy decoding, and the last number of the answer (cut at a new \"Question:\")."
    )
    parser.add_argument("--data", required=True,
                        help="MGSM file: question<TAB>answer_number TSV (juletxara/mgsm's mgsm_xx.tsv) or "
                        ".json/.jsonl records {question, answer_number}")
    parser.add_argument("--model-name", required=True, help="base model folder (local only, never downloaded)")
    parser.add_argument("--peft-model-id", help="local PEFT adapter folder, e.g. the output of merge_adapters")
    parser.add_argument("--device", help="torch device (default cuda if available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="generation length limit (default 512)")
    parser.add_argument("--max-examples", type=int, help="only the first N problems")
    parser.add_argument("--output-json", help="write the metrics to this JSON file")
    parser.add_argument("--predictions", help="write per-problem generations and predictions to this JSONL file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    items = load_mgsm(args.data)[: args.max_examples]
    model, tokenizer = load_model_and_tokenizer(args.model_name, args.peft_model_id, args.device)
    result = evaluate_mgsm(model, tokenizer, items, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    if args.predictions:
        write_jsonl(args.predictions, result["records"])
    if args.output_json:
        write_json(args.output_json, result["metrics"])
    print(json.dumps(result["metrics"]))


if __name__ == "__main__":
    main()
