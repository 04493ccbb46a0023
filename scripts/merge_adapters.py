"""Merge a task adapter with two reference-task adapters by AdaMergeX into a new PEFT adapter directory."""
import argparse
import json

from transformers_align.merging import IA3_METHODS, LORA_METHODS, merge_adapters


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="AdaMergeX: task + t·(ref_target − ref_source) for LoRA (in ΔW space), "
        "task ⊙ (1 + t·(ref_target/ref_source − 1)) for IA3. Reads adapter files only; no base model is loaded."
    )
    parser.add_argument("--task", required=True, help="task adapter directory, trained in the source language")
    parser.add_argument("--ref-target", required=True, help="reference-task adapter directory, target language")
    parser.add_argument("--ref-source", required=True, help="reference-task adapter directory, source language")
    parser.add_argument("--t", type=float, default=1.0, help="weight of the language gap (default 1.0)")
    parser.add_argument("--out", required=True, help="output adapter directory (written atomically)")
    parser.add_argument("--method", choices=LORA_METHODS + IA3_METHODS, default=None,
                        help="LoRA: delta (default, exact at rank r1+r2+r3), delta-svd (compress to --rank), "
                        "per-factor (the reference code's rule on A and B separately); IA3: ratio (default)")
    parser.add_argument("--rank", type=int, default=None, help="target rank for --method delta-svd")
    parser.add_argument("--allow-base-mismatch", action="store_true",
                        help="do not require the same base_model_name_or_path in the three adapter configs")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    report = merge_adapters(args.task, args.ref_target, args.ref_source, t=args.t, out=args.out, method=args.method,
                            rank=args.rank, check_base_model=not args.allow_base_mismatch, overwrite=args.overwrite)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
