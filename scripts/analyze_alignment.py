"""Per-layer cross-lingual alignment of a local model on parallel pairs: table, JSON and PNG plot.

By default the pooling and the aligned layer L are those the model was trained with (the run record next
to --peft_model_id, or the model's config), so what you analyse is what you trained.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from transformers_align.cli import comma_list, exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import write_json
from transformers_align.evaluation.alignment_analysis import (
    analysis_settings,
    analyze_alignment,
    analyze_languages,
    format_languages,
    format_table,
    plot,
    read_pairs_files,
)
from transformers_align.evaluation.arguments import EvaluationModelArguments, check_input_files, require_model
from transformers_align.losses import POOLING_TYPES
from transformers_align.paths import refuse_output_over_inputs


@dataclass
class AnalysisArguments:
    pairs: str = option(
        help="one pairs file, or several comma-separated (one per language: a table for each and their mean); "
        "two-column TSV whose first column is side 0 and second side 1 "
        "(scripts.build_parallel_pairs writes English first), or JSON/JSONL with "
        "text_parallel_0/text_parallel_1 (or AFP's sent0/sent1); "
        "'R@1 0>1' retrieves side 1 for each side-0 sentence"
    )
    pooling: Optional[str] = option(None, choices=list(POOLING_TYPES), help="default: the trained model's pooling")
    skip_first: Optional[int] = option(
        None,
        aliases=["--skip-first"],
        help="leading tokens left out of the pooling, by position "
        "(default: the trained model's contrastive_pooling_skip_first)",
    )
    skip_bos: Optional[bool] = option(
        None,
        aliases=["--skip-bos"],
        nargs="?",
        const=True,
        help="leave the opening BOS out of the pooling (default: the trained model's setting)",
    )
    layer: Optional[int] = option(None, help="the layer L to check and report (default: the trained one)")
    max_pairs: Optional[int] = option(None, aliases=["--max-pairs"], help="only the first N pairs")
    batch_size: int = option(16, aliases=["--batch-size"], help="sentences per forward pass")
    output_dir: str = option(
        "outputs/alignment_analysis",
        aliases=["--output-dir"],
        help="gets alignment_analysis.json and alignment_analysis.png (with several pairs files: the mean, "
        "and alignment_analysis_<name>.png per file)",
    )
    baseline_json: Optional[str] = option(
        None, aliases=["--baseline-json"], help="an earlier alignment_analysis.json (e.g. before training) drawn dashed"
    )


def check(model: EvaluationModelArguments, args: AnalysisArguments, pairs_files) -> None:
    refuse_output_over_inputs(
        {"--output_dir": args.output_dir},
        {"--pairs": pairs_files, "--baseline_json": args.baseline_json, **model.inputs()},
    )
    check_input_files({"--pairs": pairs_files, "--baseline_json": args.baseline_json})
    model.check()


def parse_args(argv=None):
    return parse_arguments((EvaluationModelArguments, AnalysisArguments), argv, __doc__, check=require_model)


def main(argv=None):
    model_args, args = parse_args(argv)
    files = comma_list(args.pairs)
    check(model_args, args, files)
    pairs = read_pairs_files(files, args.max_pairs)
    model, tokenizer = model_args.load()
    settings = analysis_settings(
        model, model_args.peft_model_id, args.pooling, args.skip_first, args.skip_bos, args.layer
    )
    output_dir = Path(args.output_dir)
    baseline = json.loads(Path(args.baseline_json).read_text(encoding="utf-8")) if args.baseline_json else None
    sources = dict(model_name_or_path=model_args.model_name_or_path, peft_model_id=model_args.peft_model_id)
    if len(files) == 1:
        report = analyze_alignment(model, tokenizer, next(iter(pairs.values())), settings, args.batch_size)
        report["settings"].update(sources, pairs_file=files[0])
        print(format_table(report))
        if report["warning"]:
            print(f"WARNING: {report['warning']}")
        print(write_json(output_dir / "alignment_analysis.json", report))
        print(plot(report, output_dir / "alignment_analysis.png", baseline))
        return report
    report = analyze_languages(model, tokenizer, pairs, settings, args.batch_size)
    report["mean"]["settings"].update(sources, pairs_files=files)
    print(format_languages(report))
    for name, language in report["languages"].items():
        if language["warning"]:
            print(f"WARNING ({name}): {language['warning']}")
    print(write_json(output_dir / "alignment_analysis.json", report))
    for name, language in report["languages"].items():
        print(plot(language, output_dir / f"alignment_analysis_{name}.png"))
    print(plot(report["mean"], output_dir / "alignment_analysis.png", baseline and baseline.get("mean", baseline)))
    return report


if __name__ == "__main__":
    exit_on_user_error(main)
