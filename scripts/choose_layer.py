"""Choose the alignment layer (and a skip-first) of a local model from parallel pairs, before training.

The layer is chosen on a seeded sample of the pairs (``--held_out`` of them) with the base model, by the rule of
``transformers_align.evaluation.layer_choice``. The reason goes to stderr; the last line of stdout is the layer
alone, for ``LOSS_LAYER=auto`` in scripts/train_with_alignment.sh.
"""

import random
import sys
from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.evaluation.alignment_analysis import analysis_settings, read_pairs
from transformers_align.evaluation.arguments import EvaluationModelArguments, require_model
from transformers_align.evaluation.layer_choice import MAX_SKIP, recommend, sweep_layers
from transformers_align.losses import POOLING_TYPES


@dataclass
class LayerChoiceArguments:
    pairs: str = option(help="pairs file (TSV, or JSON/JSONL with text_parallel_0/1 or sent0/sent1)")
    held_out: int = option(100, aliases=["--held-out"], help="pairs sampled (seeded) from --pairs to choose on")
    seed: int = option(0, help="seed of the sample")
    pooling: Optional[str] = option(None, choices=list(POOLING_TYPES), help="default: the model's setting")
    skip_first: Optional[int] = option(
        None, aliases=["--skip-first"], help=f"fix the skip-first and choose the layer only (default: 0..{MAX_SKIP})"
    )
    batch_size: int = option(16, aliases=["--batch-size"], help="sentences per forward pass")


def check(model_args, args):
    require_model(model_args)
    if args.held_out < 2:
        raise ValueError(f"--held_out {args.held_out}: retrieval needs at least 2 pairs")
    if args.skip_first is not None and args.skip_first < 0:
        raise ValueError(f"--skip_first {args.skip_first}: expected an integer >= 0")


def main(argv=None):
    model_args, args = parse_arguments((EvaluationModelArguments, LayerChoiceArguments), argv, __doc__, check=check)
    pairs = read_pairs(args.pairs)
    sample = random.Random(args.seed).sample(pairs, min(args.held_out, len(pairs)))
    model, tokenizer = model_args.load()
    settings = analysis_settings(model, model_args.peft_model_id, args.pooling, args.skip_first)
    skips = [] if args.skip_first is None else [args.skip_first]
    sweep = sweep_layers(model, tokenizer, sample, settings, skips, args.batch_size)
    choice = recommend(sweep, settings, args.skip_first)
    print(f"choose_layer: {choice['reason']}", file=sys.stderr)
    print(choice["layer"])
    return choice


if __name__ == "__main__":
    exit_on_user_error(main)
