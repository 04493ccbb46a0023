"""Report of an alignment run: held-out retrieval at layer L before/after with chance level, the MASSIVE task
result, and the cost: held-out English bits per byte and general questions, base model against the adapter.

Prints a short report and writes alignment_report.json into the adapter folder.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from transformers_align.cli import comma_list, exit_on_user_error, option, parse_arguments
from transformers_align.errors import UserError
from transformers_align.evaluation.arguments import EvaluationModelArguments, MassiveDataArguments, check_input_files
from transformers_align.evaluation.massive import MASSIVE_MAX_NEW_TOKENS
from transformers_align.evaluation.run_report import alignment_run_report, format_run_report
from transformers_align.paths import refuse_output_over_inputs
from transformers_align.training.checkpoints import REPORT_FILE


@dataclass
class RunReportArguments:
    adapter: str = option(help="the OUTDIR of the LoRA training run")
    pairs: str = option(help="held-out pairs TSV, side 0 first (e.g. en-fr.test.tsv)")
    model_name_or_path: Optional[str] = option(
        None,
        aliases=["--model", "--model-name"],
        help="the base model folder the adapter was trained on (default: the one the adapter names)",
    )
    massive_dir: str = option(
        "data_example/massive", aliases=["--massive-dir"], help="folder of MASSIVE <locale>.jsonl files"
    )
    task_languages: str = option("en,fr", aliases=["--task-languages"], help="comma-separated MASSIVE languages")
    partition: str = option("test", help="MASSIVE partition to score")
    batch_size: int = option(16, aliases=["--batch-size"], help="prompts per generation batch")
    max_new_tokens: int = option(MASSIVE_MAX_NEW_TOKENS, aliases=["--max-new-tokens"], help="generation length limit")
    device: Optional[str] = option(None, help="torch device; None: cuda if available, else cpu")

    def __post_init__(self):
        for flag, value in (("--batch_size", self.batch_size), ("--max_new_tokens", self.max_new_tokens)):
            if value < 1:
                raise UserError(f"{flag} {value}: must be at least 1")
        if not comma_list(self.task_languages):
            raise UserError("--task_languages is empty: give comma-separated MASSIVE languages (en,fr)")


def check(args: RunReportArguments) -> None:
    """Every file and folder the report reads, before any model loads; the base model from the adapter if not given."""
    refuse_output_over_inputs(
        {"--adapter": Path(args.adapter) / REPORT_FILE},
        {"--pairs": args.pairs, "--massive_dir": args.massive_dir, "--model_name_or_path": args.model_name_or_path},
    )
    check_input_files({"--pairs": args.pairs})
    for lang in comma_list(args.task_languages):
        MassiveDataArguments(lang=lang, partition=args.partition, data_dir=args.massive_dir).check()
    model = EvaluationModelArguments(model_name_or_path=args.model_name_or_path, peft_model_id=args.adapter)
    model.check()
    args.model_name_or_path = model.model_name_or_path


def parse_args(argv=None):
    (args,) = parse_arguments((RunReportArguments,), argv, __doc__)
    return args


def main(argv=None):
    args = parse_args(argv)
    check(args)
    report = alignment_run_report(
        args.model_name_or_path,
        args.adapter,
        args.pairs,
        args.massive_dir,
        comma_list(args.task_languages),
        args.partition,
        args.batch_size,
        args.max_new_tokens,
        args.device,
    )
    print(format_run_report(report))
    return report


if __name__ == "__main__":
    exit_on_user_error(main)
