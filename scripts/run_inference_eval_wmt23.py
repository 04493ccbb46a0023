"""Translate a local WMT-style test set with a local model (+ PEFT adapter) and score BLEU, chrF and, if
available, COMET."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import write_json, write_jsonl
from transformers_align.errors import UserError
from transformers_align.evaluation.arguments import (
    ChatTemplateArguments,
    EvaluationModelArguments,
    GenerationArguments,
    check_input_files,
    check_output_files,
    require_model,
)
from transformers_align.evaluation.wmt import (
    evaluate_translations,
    format_metrics,
    read_test_set,
    read_translations,
    translate,
    wmt_files,
)
from transformers_align.paths import refuse_output_over_inputs


@dataclass
class WmtArguments:
    source_lang: str = option("de", aliases=["--source-lang"], help="source language code")
    lang: str = option("en", help="target language code")
    data_dir: str = option(
        "data_example/wmt",
        aliases=["--data-dir"],
        help="folder with <src>-<tgt>.<src> and <src>-<tgt>.<tgt>, one segment a line",
    )
    source_file: Optional[str] = option(
        None, aliases=["--source-file"], help="source segments, one a line (overrides --data_dir)"
    )
    reference_file: Optional[str] = option(
        None, aliases=["--reference-file"], help="reference segments, one a line (overrides --data_dir)"
    )
    output_file: Optional[str] = option(
        None, aliases=["--output-file"], help="translations JSONL (default wmt_<src>-<tgt>.jsonl)"
    )
    metrics_file: Optional[str] = option(
        None, aliases=["--metrics-file"], help="metrics and counts JSON (default wmt_<src>-<tgt>_metrics.json)"
    )
    evaluation_only: bool = option(
        False, aliases=["--evaluation-only"], help="score an existing --output_file (no model needed)"
    )
    allow_missing: bool = option(
        False,
        aliases=["--allow-missing"],
        help="with --evaluation_only: score segments without a translation as empty instead of failing",
    )
    comet_model: Optional[str] = option(
        None,
        aliases=["--comet-model"],
        help="local COMET checkpoint (.ckpt or model folder); COMET is skipped without it",
    )
    comet_batch_size: int = option(16, aliases=["--comet-batch-size"], help="COMET batch size")


def files(args: WmtArguments) -> tuple:
    """``(inputs, outputs)``: flag -> path of the files this run reads and writes."""
    pair = f"{args.source_lang}-{args.lang}"
    default_source, default_reference = wmt_files(args.data_dir, args.source_lang, args.lang)
    output_file = args.output_file or f"wmt_{pair}.jsonl"
    inputs = {
        "--source_file": args.source_file or default_source,
        "--reference_file": args.reference_file or default_reference,
        **({"--output_file": output_file} if args.evaluation_only else {}),
    }
    outputs = {
        "--metrics_file": args.metrics_file or f"wmt_{pair}_metrics.json",
        **({} if args.evaluation_only else {"--output_file": output_file}),
    }
    return inputs, outputs


def check(model: EvaluationModelArguments, _template, _generation, args: WmtArguments) -> None:
    inputs, outputs = files(args)
    refuse_output_over_inputs(outputs, {**inputs, **({} if args.evaluation_only else model.inputs())})
    check_input_files(inputs)
    check_output_files(outputs)
    if args.comet_model and not Path(args.comet_model).exists():
        raise UserError(f"--comet_model {args.comet_model}: no such checkpoint file or folder")
    if args.comet_batch_size < 1:
        raise UserError(f"--comet_batch_size {args.comet_batch_size}: must be at least 1")
    if not args.evaluation_only:
        model.check()


def model_unless_evaluation_only(model, _template, _generation, args: WmtArguments) -> None:
    if not args.evaluation_only:
        require_model(model)


def parse_args(argv=None):
    return parse_arguments(
        (EvaluationModelArguments, ChatTemplateArguments, GenerationArguments, WmtArguments),
        argv,
        __doc__,
        defaults={"batch_size": 8, "max_new_tokens": 256},
        check=model_unless_evaluation_only,
    )


def main(argv=None):
    model_args, template, generation, args = parse_args(argv)
    check(model_args, template, generation, args)
    pair = f"{args.source_lang}-{args.lang}"
    inputs, outputs = files(args)
    output_file = inputs.get("--output_file") or outputs["--output_file"]
    sources, references = read_test_set(inputs["--source_file"], inputs["--reference_file"])
    if args.evaluation_only:
        hypotheses, counts = read_translations(output_file, len(sources), generation.max_examples, args.allow_missing)
    else:
        model, tokenizer = model_args.load()
        records, counts = translate(
            model,
            template.apply(tokenizer),
            sources,
            references,
            args.source_lang,
            args.lang,
            generation.batch_size,
            generation.max_new_tokens,
            generation.max_examples,
        )
        hypotheses = [record["prediction"] for record in records]
        print(f"wrote {len(records)} translations to {write_jsonl(output_file, records)}")
    metrics = evaluate_translations(
        sources, hypotheses, references, args.lang, counts, args.comet_model, args.comet_batch_size
    )
    print(format_metrics(pair, metrics))
    write_json(outputs["--metrics_file"], metrics)
    return metrics


if __name__ == "__main__":
    exit_on_user_error(main)
