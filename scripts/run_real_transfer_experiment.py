"""Cross-lingual transfer on SmolLM2-135M-Instruct: the CLDR continent task trained in English with LoRA (baseline,
alternate, joint), tested zero-shot in other languages; prints and saves the results table and plot."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from tools.experiments.cldr_task import FIELD_WORDS
from tools.experiments.real_transfer import RealTransferConfig, run_experiment
from tools.experiments.real_transfer_report import combine_runs, markdown_table, save_results
from transformers_align.cli import comma_list, exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import read_json, write_json
from transformers_align.errors import UserError
from transformers_align.losses import POOLING_TYPES
from transformers_align.modeling.loading import read_config

DEFAULTS = RealTransferConfig()


@dataclass
class RealTransferArguments:
    """Unset options keep the experiment's configuration (``RealTransferConfig``, or its quick slice)."""

    seeds: str = option("0", help="comma-separated training seeds")
    languages: Optional[str] = option(
        None, help=f"comma-separated zero-shot languages (default {','.join(DEFAULTS.languages)}; also ru)"
    )
    pair_languages: Optional[str] = option(
        None, help="comma-separated languages whose pairs the alignment trains on (default: all test languages)"
    )
    output_dir: str = option(
        "outputs/real_transfer", aliases=["--output-dir"], help="gets results.json, results.md and transfer.png"
    )
    quick: bool = option(False, help="a small slice (few entities and steps), for smoke tests")
    model_name_or_path: Optional[str] = option(
        None,
        aliases=["--model-path", "--model", "--model-name"],
        help="Hugging Face folder (default: SmolLM2 from scripts.prepare_smollm2)",
    )
    pooling: Optional[str] = option(
        None, help=f"sentence pooling of the alignment loss and retrieval (default {DEFAULTS.pooling})"
    )
    alignment_layer: Optional[int] = option(
        None, aliases=["--alignment-layer"], help="decoder block to align (default: the middle one)"
    )
    temperature: Optional[float] = option(None, help=f"InfoNCE temperature (default {DEFAULTS.temperature})")
    steps: Optional[int] = option(None, help=f"task batches per variant (default {DEFAULTS.steps})")
    learning_rate: Optional[float] = option(
        None, aliases=["--learning-rate"], help=f"LoRA learning rate (default {DEFAULTS.learning_rate})"
    )
    lora_rank: Optional[int] = option(None, aliases=["--lora-rank"], help=f"LoRA rank (default {DEFAULTS.lora_rank})")
    lora_targets: Optional[str] = option(
        None, aliases=["--lora-targets"], help="comma-separated module names (default: every linear of the blocks)"
    )
    threads: Optional[int] = option(None, help=f"torch threads (default {DEFAULTS.threads})")
    variants: Optional[str] = option(
        None, help=f"comma-separated variants to train, baseline included (default all: {','.join(DEFAULTS.variants)})"
    )
    no_progress: bool = option(False, aliases=["--no-progress"], help="no progress bars")
    combine: Optional[List[str]] = option(
        None, metavar="DIR", help="instead of running: merge the results.json of runs that differ only in their seeds"
    )

    def config(self) -> RealTransferConfig:
        """The experiment's configuration with the options given here."""
        config = RealTransferConfig.quick() if self.quick else RealTransferConfig()
        try:
            config.seeds = tuple(int(seed) for seed in comma_list(self.seeds))
        except ValueError:
            raise UserError(f"--seeds must be comma-separated integers, got {self.seeds!r}") from None
        overrides = {
            "languages": self.languages and tuple(comma_list(self.languages)),
            "pair_languages": self.pair_languages and tuple(comma_list(self.pair_languages)),
            "model_path": self.model_name_or_path,
            "pooling": self.pooling,
            "alignment_layer": self.alignment_layer,
            "temperature": self.temperature,
            "steps": self.steps,
            "learning_rate": self.learning_rate,
            "lora_rank": self.lora_rank,
            "lora_targets": self.lora_targets and tuple(comma_list(self.lora_targets)),
            "threads": self.threads,
            "variants": self.variants and tuple(comma_list(self.variants)),
        }
        return dataclasses.replace(config, **{name: value for name, value in overrides.items() if value is not None})


def parse_args(argv=None):
    (args,) = parse_arguments((RealTransferArguments,), argv, __doc__)
    return args


def check(config: RealTransferConfig) -> None:
    """Languages, pooling, the model folder and the layer against its depth, before any model loads."""
    unknown = [language for language in config.languages if language not in FIELD_WORDS]
    if unknown:
        raise UserError(f"--languages {','.join(unknown)}: no prompt words; supported: {', '.join(FIELD_WORDS)}")
    if config.pooling not in POOLING_TYPES:
        raise UserError(f"--pooling {config.pooling}: choose from {', '.join(POOLING_TYPES)}")
    if config.model_path is None:
        return
    blocks = config.num_layers or read_config(config.model_path, local_files_only=True).num_hidden_layers
    if config.alignment_layer is not None and not 1 <= config.alignment_layer <= blocks:
        raise UserError(f"--alignment_layer {config.alignment_layer}: the model has {blocks} blocks; use 1 to {blocks}")


def main(argv=None):
    args = parse_args(argv)
    if args.combine:
        return _report(
            combine_runs([read_json(Path(folder) / "results.json") for folder in args.combine]), args.output_dir
        )
    config = args.config()
    check(config)
    # results.json is rewritten after each model, so an interrupted run keeps what it finished.
    result = run_experiment(
        config,
        progress=not args.no_progress,
        on_update=lambda partial: write_json(Path(args.output_dir) / "results.json", partial),
    )
    return _report(result, args.output_dir)


def _report(result, output_dir):
    print(markdown_table(result))
    for path in save_results(result, output_dir).values():
        print(path)
    return result


if __name__ == "__main__":
    exit_on_user_error(main)
