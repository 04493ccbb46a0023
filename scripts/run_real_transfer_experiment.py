"""Cross-lingual transfer on SmolLM2-135M-Instruct: the CLDR continent task trained in English with LoRA (baseline,
alternate, joint), tested zero-shot in other languages; prints and saves the results table and plot."""

import argparse
import sys
from pathlib import Path

from tools.experiments.real_transfer import RealTransferConfig, run_experiment
from tools.experiments.real_transfer_report import combine_runs, markdown_table, save_results
from transformers_align.data.jsonl import read_json, write_json


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    parser.add_argument("--languages", help="comma-separated zero-shot languages (default fr,de,es; also ru)")
    parser.add_argument(
        "--output-dir", default="outputs/real_transfer", help="gets results.json, results.md and transfer.png"
    )
    parser.add_argument("--quick", action="store_true", help="a small slice (few entities and steps), for smoke tests")
    parser.add_argument(
        "--model_name_or_path",
        "--model-path",
        "--model",
        "--model-name",
        help="Hugging Face folder (default: SmolLM2 from scripts.prepare_smollm2)",
    )
    parser.add_argument(
        "--pooling", help="sentence pooling of the alignment loss and retrieval (default mean, first token left out)"
    )
    parser.add_argument("--alignment-layer", type=int, help="decoder block to align (default: the middle one)")
    parser.add_argument("--temperature", type=float, help="InfoNCE temperature (default 0.05)")
    parser.add_argument("--steps", type=int, help="task batches per variant (default 32)")
    parser.add_argument("--learning-rate", type=float, help="LoRA learning rate (default 1e-3)")
    parser.add_argument("--lora-rank", type=int, help="LoRA rank (default 8)")
    parser.add_argument(
        "--lora-targets", help="comma-separated module names (default: every linear layer of the blocks)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="DIR",
        help="instead of running: merge the results.json of runs that differ only in their seeds",
    )
    return parser.parse_args(argv)


def _codes(text):
    return tuple(part.strip() for part in text.split(",") if part.strip())


def main(argv=None):
    args = parse_args(argv)
    if args.combine:
        return _report(_combined(args.combine), args.output_dir)
    config = RealTransferConfig.quick() if args.quick else RealTransferConfig()
    try:
        config.seeds = tuple(int(seed) for seed in _codes(args.seeds))
    except ValueError:
        sys.exit(f"run_real_transfer_experiment: --seeds must be comma-separated integers, got {args.seeds!r}")
    overrides = {
        "languages": args.languages and _codes(args.languages),
        "model_path": args.model_name_or_path,
        "pooling": args.pooling,
        "alignment_layer": args.alignment_layer,
        "temperature": args.temperature,
        "steps": args.steps,
        "learning_rate": args.learning_rate,
        "lora_rank": args.lora_rank,
        "lora_targets": args.lora_targets and _codes(args.lora_targets),
        "threads": args.threads,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    try:
        # results.json is rewritten after each model, so an interrupted run keeps what it finished.
        result = run_experiment(
            config,
            progress=not args.no_progress,
            on_update=lambda partial: write_json(Path(args.output_dir) / "results.json", partial),
        )
    except ValueError as error:  # an unsupported language, layer or pooling, before any training
        sys.exit(f"run_real_transfer_experiment: {error}")
    return _report(result, args.output_dir)


def _combined(folders):
    try:
        return combine_runs([read_json(Path(folder) / "results.json") for folder in folders])
    except (OSError, ValueError) as error:
        sys.exit(f"run_real_transfer_experiment: {error}")


def _report(result, output_dir):
    print(markdown_table(result))
    for path in save_results(result, output_dir).values():
        print(path)
    return result


if __name__ == "__main__":
    main()
