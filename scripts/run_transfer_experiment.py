"""Controlled cross-lingual transfer experiment on two artificial languages: prints and saves the results table."""

import dataclasses
from dataclasses import dataclass
from typing import Optional

from tools.experiments.synthetic_transfer import ExperimentConfig, run_experiment
from tools.experiments.transfer_report import markdown_table, save_results
from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.errors import UserError

DEFAULTS = ExperimentConfig()


@dataclass
class TransferArguments:
    """Unset options keep the experiment's configuration (``ExperimentConfig``, or its quick sizes)."""

    seed: int = option(0, help="seeds the languages, the data, the model and training")
    output_dir: str = option(
        "outputs/transfer", aliases=["--output-dir"], help="gets results.json, results.md and retrieval.png"
    )
    quick: bool = option(False, help="tiny sizes (well under a minute), for smoke tests")
    alignment_layer: Optional[int] = option(
        None, aliases=["--alignment-layer"], help="decoder block to align (default: the middle one)"
    )
    temperature: Optional[float] = option(None, help=f"InfoNCE temperature (default {DEFAULTS.temperature})")
    parallel_pairs: Optional[int] = option(
        None, aliases=["--parallel-pairs"], help=f"A-B pairs for the alignment loss (default {DEFAULTS.parallel_pairs})"
    )
    lora_rank: Optional[int] = option(
        None, aliases=["--lora-rank"], help="LoRA rank; 0 (the default) fine-tunes the whole model"
    )
    no_progress: bool = option(False, aliases=["--no-progress"], help="no progress bars")

    def config(self) -> ExperimentConfig:
        """The experiment's configuration with the options given here."""
        config = ExperimentConfig.quick(self.seed) if self.quick else ExperimentConfig(seed=self.seed)
        overrides = {
            "alignment_layer": self.alignment_layer,
            "temperature": self.temperature,
            "parallel_pairs": self.parallel_pairs,
            "lora_rank": self.lora_rank,
        }
        return dataclasses.replace(config, **{name: value for name, value in overrides.items() if value is not None})


def check(config: ExperimentConfig) -> None:
    blocks = config.num_layers
    if not 1 <= config.layer <= blocks:
        raise UserError(f"--alignment_layer {config.layer}: the model has {blocks} blocks; use 1 to {blocks}")
    if not config.temperature > 0:
        raise UserError(f"--temperature {config.temperature}: must be above 0")
    if config.parallel_pairs < 1:
        raise UserError(f"--parallel_pairs {config.parallel_pairs}: must be at least 1")
    if config.lora_rank < 0:
        raise UserError(f"--lora_rank {config.lora_rank}: 0 (full fine-tuning) or more")


def main(argv=None):
    (args,) = parse_arguments((TransferArguments,), argv, __doc__)
    config = args.config()
    check(config)
    result = run_experiment(config, progress=not args.no_progress)
    print(markdown_table(result))
    for path in save_results(result, args.output_dir).values():
        print(path)
    return result


if __name__ == "__main__":
    exit_on_user_error(main)
