"""Cut raw text of one language into consecutive windows of --chunk_size words (characters for zh, ja, th, ...)
and write them as a JSON list of {prompt, completion} (AdaMergeX reference-task data); prompt + completion
is the window. The last incomplete window is dropped."""

import dataclasses
import json
from dataclasses import dataclass
from typing import List, Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import write_json
from transformers_align.data.reference_task import FORMATS, UNITS, build_reference_task
from transformers_align.paths import refuse_output_over_inputs


@dataclass
class ReferenceTaskArguments:
    input: List[str] = option(
        help="input files, read in order: plain text (.txt, one paragraph or article per line) "
        "or .json/.jsonl records with a text field"
    )
    language: str = option(help="language code (en, sw, zh-CN, ...); picks --unit")
    output: str = option(help="output JSON file (written atomically)")
    chunk_size: int = option(512, aliases=["--chunk-size"], help="units per window")
    prompt_units: int = option(
        1,
        aliases=["--prompt-units"],
        help="units of each window that go to the prompt, the rest to the completion (1: a "
        "prompt-masking trainer then learns all but the first unit, close to AdaMergeX's "
        "loss on the whole window; 0 leaves the prompt empty; the reference's demo data used "
        "511 of 512)",
    )
    unit: str = option(
        "auto", choices=("auto",) + UNITS, help="word or char windows (auto: char for languages written without spaces)"
    )
    format: str = option(
        "auto", choices=("auto",) + FORMATS, help="input format (auto: json for .json/.jsonl, text otherwise)"
    )
    text_field: str = option("text", aliases=["--text-field"], help="field holding the text in JSON records")
    max_chunks: Optional[int] = option(None, aliases=["--max-chunks"], help="stop after this many windows")
    prompt_field: str = option("prompt", aliases=["--prompt-field"], help="output field name of the prompt")
    completion_field: str = option(
        "completion", aliases=["--completion-field"], help="output field name of the completion"
    )


def parse_args(argv=None):
    return parse_arguments((ReferenceTaskArguments,), argv, __doc__)


def main(argv=None):
    (args,) = parse_args(argv)
    refuse_output_over_inputs({"--output": args.output}, {"--input": args.input})
    records, stats = build_reference_task(
        args.input,
        args.language,
        chunk_size=args.chunk_size,
        prompt_units=args.prompt_units,
        unit=None if args.unit == "auto" else args.unit,
        fmt=args.format,
        text_field=args.text_field,
        max_chunks=args.max_chunks,
        prompt_field=args.prompt_field,
        completion_field=args.completion_field,
    )
    write_json(args.output, records)
    print(json.dumps(dict(dataclasses.asdict(stats), output=args.output), ensure_ascii=False))


if __name__ == "__main__":
    exit_on_user_error(main)
