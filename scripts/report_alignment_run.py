"""Report of an alignment run: held-out retrieval at layer L before/after with chance level, the MASSIVE task
result, and the cost: held-out English bits per byte and general questions, base model against the adapter.

Prints a short report and writes alignment_report.json into the adapter folder.
"""

import sys
from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import comma_list, option, parse_arguments
from transformers_align.data.jsonl import DataFormatError
from transformers_align.evaluation.run_report import alignment_run_report, format_run_report
from transformers_align.paths import OutputOverInputError


@dataclass
class RunReportArguments:
    model_name_or_path: str = option(
        aliases=["--model", "--model-name"], help="the base model folder the adapter was trained on"
    )
    adapter: str = option(help="the OUTDIR of the LoRA training run")
    pairs: str = option(help="held-out pairs TSV, side 0 first (e.g. en-fr.test.tsv)")
    massive_dir: str = option(
        "data_example/massive", aliases=["--massive-dir"], help="folder of MASSIVE <locale>.jsonl files"
    )
    task_languages: str = option("en,fr", aliases=["--task-languages"], help="comma-separated MASSIVE languages")
    partition: str = option("test", help="MASSIVE partition to score")
    batch_size: int = option(16, aliases=["--batch-size"], help="prompts per generation batch")
    max_new_tokens: int = option(48, aliases=["--max-new-tokens"], help="generation length limit")
    device: Optional[str] = option(None, help="torch device; None: cuda if available, else cpu")


def parse_args(argv=None):
    (args,) = parse_arguments((RunReportArguments,), argv, __doc__)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
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
    except OutputOverInputError as error:
        print(f"report_alignment_run: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except (FileNotFoundError, DataFormatError, ValueError) as error:
        sys.exit(f"report_alignment_run: {error}")
    print(format_run_report(report))
    return report


if __name__ == "__main__":
    main()
