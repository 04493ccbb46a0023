"""Per-layer cross-lingual alignment of a local model on parallel pairs: table, JSON and PNG plot."""
import argparse
import json
from pathlib import Path

from transformers_align.data.jsonl import write_json
from transformers_align.evaluation.alignment_analysis import analyze_alignment, format_table, plot, read_pairs
from transformers_align.evaluation.cli import DTYPES
from transformers_align.evaluation.generation import load_model_and_tokenizer
from transformers_align.losses import POOLING_TYPES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="local model folder (never downloaded)")
    parser.add_argument("--peft-model-id", help="local folder of a PEFT adapter to put on the model")
    parser.add_argument("--pairs", required=True,
                        help="two-column TSV, or JSON/JSONL with text_parallel_0/text_parallel_1 (or AFP's sent0/sent1)")
    parser.add_argument("--pooling", default="mean", choices=POOLING_TYPES)
    parser.add_argument("--skip-bos", action="store_true", help="leave the opening special tokens (BOS) out of the pooling")
    parser.add_argument("--max-pairs", type=int, help="only the first N pairs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--output-dir", default="outputs/alignment_analysis",
                        help="gets alignment_analysis.json and alignment_analysis.png")
    parser.add_argument("--baseline-json", help="an earlier alignment_analysis.json (e.g. before training) drawn dashed")
    parser.add_argument("--device", help="torch device (default cuda if available, else cpu)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="default bfloat16 on GPU, float32 on CPU")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    pairs = read_pairs(args.pairs)[:args.max_pairs]
    model, tokenizer = load_model_and_tokenizer(args.model, args.peft_model_id, args.device, DTYPES.get(args.dtype))
    report = analyze_alignment(model, tokenizer, pairs, args.pooling, args.batch_size, args.skip_bos)
    report["settings"].update(model=args.model, peft_model_id=args.peft_model_id, pairs_file=args.pairs)
    print(format_table(report))
    output_dir = Path(args.output_dir)
    baseline = json.loads(Path(args.baseline_json).read_text(encoding="utf-8")) if args.baseline_json else None
    print(write_json(output_dir / "alignment_analysis.json", report))
    print(plot(report, output_dir / "alignment_analysis.png", baseline))
    return report


if __name__ == "__main__":
    main()
