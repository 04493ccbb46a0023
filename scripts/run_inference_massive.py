"""Generate MASSIVE slot (and intent) predictions with a local model (+ PEFT adapter); writes
{id, locale, utt, prompt, prediction} JSONL."""

from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import write_jsonl
from transformers_align.data.massive import has_intents, massive_prompts
from transformers_align.evaluation.arguments import (
    ChatTemplateArguments,
    EvaluationModelArguments,
    GenerationArguments,
    MassiveDataArguments,
    check_output_files,
    require_model,
)
from transformers_align.evaluation.generation import generate_greedy
from transformers_align.evaluation.massive import MASSIVE_MAX_NEW_TOKENS
from transformers_align.paths import refuse_output_over_inputs


@dataclass
class MassiveInferenceArguments:
    output_file: Optional[str] = option(
        None, aliases=["--output-file"], help="predictions JSONL (default massive_predictions_<lang>_<partition>.jsonl)"
    )
    no_intent: bool = option(
        False,
        aliases=["--no-intent"],
        help="use the slot-only prompt even when the data has intents (adapters trained without intents)",
    )


def output_file(data: MassiveDataArguments, args: MassiveInferenceArguments) -> str:
    return args.output_file or f"massive_predictions_{data.lang}_{data.partition}.jsonl"


def check(model, _template, _generation, data, args) -> None:
    refuse_output_over_inputs({"--output_file": output_file(data, args)}, {**data.inputs(), **model.inputs()})
    check_output_files({"--output_file": output_file(data, args)})
    data.check()
    model.check()


def parse_args(argv=None):
    return parse_arguments(
        (
            EvaluationModelArguments,
            ChatTemplateArguments,
            GenerationArguments,
            MassiveDataArguments,
            MassiveInferenceArguments,
        ),
        argv,
        __doc__,
        defaults={"batch_size": 16, "max_new_tokens": MASSIVE_MAX_NEW_TOKENS},
        check=require_model,
    )


def main(argv=None):
    model_args, template, generation, data, args = parse_args(argv)
    check(model_args, template, generation, data, args)
    records = data.load()[: generation.max_examples]
    model, tokenizer = model_args.load()
    tokenizer = template.apply(tokenizer)
    prompts = massive_prompts(records, tokenizer, with_intent=has_intents(records) and not args.no_intent)
    predictions = generate_greedy(
        model,
        tokenizer,
        prompts,
        generation.batch_size,
        generation.max_new_tokens,
        desc=f"MASSIVE {records[0].locale} {data.partition}",
    )
    rows = [
        {"id": record.id, "locale": record.locale, "utt": record.utt, "prompt": prompt, "prediction": prediction}
        for record, prompt, prediction in zip(records, prompts, predictions)
    ]
    path = write_jsonl(output_file(data, args), rows)
    print(f"wrote {len(rows)} predictions to {path}")
    return path


if __name__ == "__main__":
    exit_on_user_error(main)
