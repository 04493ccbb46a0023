"""Report of an alignment run: held-out retrieval at layer L before/after with chance level, and the
MASSIVE task result.

Prints a short report and writes alignment_report.json into the adapter folder.
"""

import argparse
import sys

from transformers_align.data.jsonl import DataFormatError
from transformers_align.evaluation.run_report import alignment_run_report, format_run_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model_name_or_path",
        "--model",
        "--model-name",
        required=True,
        help="the base model folder the adapter was trained on",
    )
    parser.add_argument("--adapter", required=True, help="the OUTDIR of the LoRA training run")
    parser.add_argument("--pairs", required=True, help="held-out pairs TSV, side 0 first (e.g. en-fr.test.tsv)")
    parser.add_argument("--massive-dir", default="data_example/massive", help="folder of MASSIVE <locale>.jsonl files")
    parser.add_argument("--task-languages", default="en,fr", help="MASSIVE languages to score (default en,fr)")
    parser.add_argument("--partition", default="test")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--device", help="torch device (default cuda if available, else cpu)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        report = alignment_run_report(
            args.model_name_or_path,
            args.adapter,
            args.pairs,
            args.massive_dir,
            args.task_languages.split(","),
            args.partition,
            args.batch_size,
            args.max_new_tokens,
            args.device,
        )
    except (FileNotFoundError, DataFormatError, ValueError) as error:
        sys.exit(f"report_alignment_run: {error}")
    print(format_run_report(report))
    return report


if __name__ == "__main__":
    main()
