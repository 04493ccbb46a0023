"""Per-layer cross-lingual alignment of a local model on parallel pairs: table, JSON and PNG plot.

By default the pooling and the aligned layer L are those the model was trained with (the run record next
to --peft-model-id, or the model's config), so what you analyse is what you trained.
"""
import argparse
import json
from pathlib import Path

from transformers_align.data.jsonl import write_json
from transformers_align.evaluation.alignment_analysis import (analysis_settings, analyze_alignment, format_table, plot,
                                                              read_pairs)
from transformers_align.evaluation.cli import DTYPES
from transformers_align.evaluation.generation import load_model_and_tokenizer
from transformers_align.losses import POOLING_TYPES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="local model folder (never downloaded)")
    parser.add_argument("--peft-model-id", help="local folder of a PEFT adapter to put on the model")
    parser.add_argument("--pairs", required=True,
                        help="two-column TSV whose first column is side 0 and second side 1 (scripts.build_parallel_pairs "
                             "writes English first), or JSON/JSONL with text_parallel_0/text_parallel_1 (or AFP's "
                             "sent0/sent1); 'R@1 0>1' retrieves side 1 for each side-0 sentence")
    parser.add_argument("--pooling", choices=POOLING_TYPES, help="default: the trained model's pooling")
    parser.add_argument("--skip-first", type=int, help="leading tokens left out of the pooling, by position "
                        "(default: the trained model's contrastive_pooling_skip_first)")
    parser.add_argument("--skip-bos", action="store_true", default=None,
                        help="leave the opening BOS out of the pooling (default: the trained model's setting)")
    parser.add_argument("--layer", type=int, help="the layer L to check and report (default: the trained one)")
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
    settings = analysis_settings(model, args.peft_model_id, args.pooling, args.skip_first, args.skip_bos, args.layer)
    report = analyze_alignment(model, tokenizer, pairs, settings, args.batch_size)
    report["settings"].update(model=args.model, peft_model_id=args.peft_model_id, pairs_file=args.pairs)
    print(format_table(report))
    if report["warning"]:
        print(f"WARNING: {report['warning']}")
    output_dir = Path(args.output_dir)
    baseline = json.loads(Path(args.baseline_json).read_text(encoding="utf-8")) if args.baseline_json else None
    print(write_json(output_dir / "alignment_analysis.json", report))
    print(plot(report, output_dir / "alignment_analysis.png", baseline))
    return report


if __name__ == "__main__":
    main()
