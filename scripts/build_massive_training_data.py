"""Turn MASSIVE JSONL files (+ optional parallel pairs TSV) into mid-align training JSON Lines
({prefix, text[, text_parallel_0/1]}), or with --translated_files into parallel task rows for the consistency
objective ({prefix, prefix_translated, text})."""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import write_jsonl
from transformers_align.data.massive import (
    PARTITIONS,
    normalize_partition,
    parallel_training_records,
    read_partition,
    training_records,
)
from transformers_align.data.records import SkipCounter, load_pairs
from transformers_align.errors import UserError
from transformers_align.evaluation.arguments import check_input_files, check_output_files
from transformers_align.modeling.loading import load_tokenizer
from transformers_align.paths import refuse_output_over_inputs
from transformers_align.tiny import byte_level_tokenizer


@dataclass
class MassiveTrainingDataArguments:
    massive_files: List[str] = option(aliases=["--massive-files"], help="MASSIVE JSONL files (release format)")
    output: str = option(help="output JSON Lines file")
    partition: str = option("train", help="partition to take from them")
    pairs: Optional[str] = option(
        None,
        help="two-column TSV (side 0<TAB>side 1, e.g. scripts.build_parallel_pairs' en-fr.train.tsv); "
        "adds text_parallel_0/1 to the rows (data mode 2); to train on more pairs than there are "
        "records, give the TSV to training as --alignment_file instead",
    )
    tokenizer_name: Optional[str] = option(
        None,
        aliases=["--tokenizer"],
        help="local tokenizer whose chat template and EOS to use "
        "(default: the embedded one, i.e. mid-align's Llama-3 format)",
    )
    no_intent: bool = option(False, aliases=["--no-intent"], help="slot-only prompts and targets, as in mid-align")
    translated_files: Optional[List[str]] = option(
        None,
        help="MASSIVE JSONL files of another locale: rows get the translated prompt of the same id "
        "(prefix_translated) and keep the source target, for --objectives consistency; excludes --pairs",
    )


def parse_args(argv=None):
    return parse_arguments((MassiveTrainingDataArguments,), argv, __doc__)


def check(args: MassiveTrainingDataArguments) -> None:
    refuse_output_over_inputs(
        {"--output": args.output},
        {
            "--massive_files": args.massive_files,
            "--pairs": args.pairs,
            "--tokenizer_name": args.tokenizer_name,
            "--translated_files": args.translated_files,
        },
    )
    try:
        normalize_partition(args.partition)
    except ValueError:
        raise UserError(f"--partition {args.partition}: use one of {', '.join(PARTITIONS)} (or validation)") from None
    if args.translated_files and args.pairs:
        raise UserError("--translated_files and --pairs: a row holds a translated prompt or a pair, not both")
    check_input_files(
        {"--massive_files": args.massive_files, "--pairs": args.pairs, "--translated_files": args.translated_files}
    )
    check_output_files({"--output": args.output})
    if args.tokenizer_name and not Path(args.tokenizer_name).expanduser().is_dir():
        raise UserError(f"--tokenizer_name {args.tokenizer_name}: no such folder; give a local tokenizer folder")


def main(argv=None):
    (args,) = parse_args(argv)
    check(args)
    records = read_partition(args.massive_files, args.partition)
    tokenizer = (
        load_tokenizer(args.tokenizer_name, local_files_only=True) if args.tokenizer_name else byte_level_tokenizer()
    )
    skips = SkipCounter()
    pairs = load_pairs([args.pairs], skips) if args.pairs else []
    skips.log(args.pairs or "")
    with_intent = False if args.no_intent else None
    if args.translated_files:
        translations = read_partition(args.translated_files, args.partition)
        rows = parallel_training_records(records, translations, tokenizer, with_intent)
        path = write_jsonl(args.output, rows)
        print(f"wrote {len(rows)} parallel task rows to {path} ({len(records) - len(rows)} without a translation)")
        return path
    rows = training_records(records, tokenizer, pairs, with_intent=with_intent)
    path = write_jsonl(args.output, rows)
    if len(pairs) > len(rows):
        print(
            f"warning: {len(pairs) - len(rows)} of {len(pairs)} pairs travel with no task row; "
            f"train with --alignment_file {args.pairs} to use them all"
        )
    print(f"wrote {len(rows)} training rows to {path}" + (f" with {len(pairs)} parallel pairs" if pairs else ""))
    return path


if __name__ == "__main__":
    exit_on_user_error(main)
