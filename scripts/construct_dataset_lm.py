"""Build AdaMergeX reference-task data (windows of raw text as {prompt, completion}) for one language."""
import argparse
import dataclasses
import json

from transformers_align.data.jsonl import write_json
from transformers_align.data.reference_task import FORMATS, UNITS, build_reference_task


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Cut raw text of one language into consecutive windows of --chunk-size words (characters "
        "for zh, ja, th, ...) and write them as a JSON list of {prompt, completion}; prompt + completion is the "
        "window. The last incomplete window is dropped."
    )
    parser.add_argument("--input", nargs="+", required=True,
                        help="input files, read in order: plain text (.txt, one paragraph or article per line) or "
                        ".json/.jsonl records with a text field")
    parser.add_argument("--language", required=True, help="language code (en, sw, zh-CN, ...); picks --unit")
    parser.add_argument("--output", required=True, help="output JSON file (written atomically)")
    parser.add_argument("--chunk-size", type=int, default=512, help="units per window (default 512)")
    parser.add_argument("--prompt-units", type=int, default=1,
                        help="units of each window that go to the prompt, the rest to the completion (default 1: a "
                        "prompt-masking trainer then learns all but the first unit, close to AdaMergeX's loss on the "
                        "whole window; 0 leaves the prompt empty; the reference's demo data used 511 of 512)")
    parser.add_argument("--unit", choices=("auto",) + UNITS, default="auto",
                        help="word or char windows (default auto: char for languages written without spaces)")
    parser.add_argument("--format", choices=("auto",) + FORMATS, default="auto",
                        help="input format (default auto: json for .json/.jsonl, text otherwise)")
    parser.add_argument("--text-field", default="text", help="field holding the text in JSON records")
    parser.add_argument("--max-chunks", type=int, default=None, help="stop after this many windows")
    parser.add_argument("--prompt-field", default="prompt", help="output field name of the prompt")
    parser.add_argument("--completion-field", default="completion", help="output field name of the completion")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    records, stats = build_reference_task(
        args.input, args.language, chunk_size=args.chunk_size, prompt_units=args.prompt_units,
        unit=None if args.unit == "auto" else args.unit, fmt=args.format, text_field=args.text_field,
        max_chunks=args.max_chunks, prompt_field=args.prompt_field, completion_field=args.completion_field,
    )
    write_json(args.output, records)
    print(json.dumps(dict(dataclasses.asdict(stats), output=args.output), ensure_ascii=False))


if __name__ == "__main__":
    main()
