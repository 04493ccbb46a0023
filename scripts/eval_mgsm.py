"""MGSM accuracy of a base model, optionally with a (merged) PEFT adapter, with AdaMergeX's prompt
("Let's think step by step.\\n\\nQuestion: ...\\nAnswer: "), greedy decoding, and the last number of the
answer (cut at a new "Question:")."""

import json
from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import write_json, write_jsonl
from transformers_align.evaluation.arguments import (
    EvaluationModelArguments,
    GenerationArguments,
    check_input_files,
    check_output_files,
    require_model,
)
from transformers_align.evaluation.mgsm import evaluate_mgsm, load_mgsm
from transformers_align.paths import refuse_output_over_inputs


@dataclass
class MgsmArguments:
    data: str = option(
        help="MGSM file: question<TAB>answer_number TSV (juletxara/mgsm's mgsm_xx.tsv) or "
        ".json/.jsonl records {question, answer_number}"
    )
    output_json: Optional[str] = option(
        None, aliases=["--output-json"], help="write the metrics and counts to this JSON file"
    )
    predictions: Optional[str] = option(None, help="write per-problem generations and predictions to this JSONL file")


def check(model: EvaluationModelArguments, _generation, args: MgsmArguments) -> None:
    outputs = {"--output_json": args.output_json, "--predictions": args.predictions}
    refuse_output_over_inputs(outputs, {"--data": args.data, **model.inputs()})
    check_input_files({"--data": args.data})
    check_output_files(outputs)
    model.check()


def parse_args(argv=None):
    return parse_arguments(
        (EvaluationModelArguments, GenerationArguments, MgsmArguments),
        argv,
        __doc__,
        defaults={"batch_size": 8, "max_new_tokens": 512},
        check=require_model,
    )


def main(argv=None):
    model_args, generation, args = parse_args(argv)
    check(model_args, generation, args)
    items = load_mgsm(args.data)
    model, tokenizer = model_args.load()
    result = evaluate_mgsm(
        model,
        tokenizer,
        items,
        batch_size=generation.batch_size,
        max_new_tokens=generation.max_new_tokens,
        max_examples=generation.max_examples,
    )
    if args.predictions:
        write_jsonl(args.predictions, result["records"])
    if args.output_json:
        write_json(args.output_json, result["metrics"])
    print(json.dumps(result["metrics"]))
    return result


if __name__ == "__main__":
    exit_on_user_error(main)
