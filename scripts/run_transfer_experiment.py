"""Controlled cross-lingual transfer experiment on two artificial languages: prints and saves the results table."""

import argparse

from tools.experiments.synthetic_transfer import ExperimentConfig, run_experiment
from tools.experiments.transfer_report import markdown_table, save_results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="seeds the languages, the data, the model and training")
    parser.add_argument(
        "--output-dir", default="outputs/transfer", help="gets results.json, results.md and retrieval.png"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (well under a minute), for smoke tests")
    parser.add_argument("--alignment-layer", type=int, help="decoder block to align (default: the middle one)")
    parser.add_argument("--temperature", type=float, help="InfoNCE temperature (default 0.1)")
    parser.add_argument("--parallel-pairs", type=int, help="number of A-B pairs for the alignment loss")
    parser.add_argument("--lora-rank", type=int, help="LoRA rank; 0 (default) fine-tunes the whole model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    config = ExperimentConfig.quick(args.seed) if args.quick else ExperimentConfig(seed=args.seed)
    overrides = {
        "alignment_layer": args.alignment_layer,
        "temperature": args.temperature,
        "parallel_pairs": args.parallel_pairs,
        "lora_rank": args.lora_rank,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    result = run_experiment(config, progress=not args.no_progress)
    print(markdown_table(result))
    for path in save_results(result, args.output_dir).values():
        print(path)
    return result


if __name__ == "__main__":
    main()
