"""Train a causal LM with task and/or alignment losses (mid-align's run_clm_lora.py arguments keep working)."""

import os
import sys

from transformers import HfArgumentParser

from transformers_align.data.jsonl import read_json
from transformers_align.errors import UserError
from transformers_align.training.arguments import (
    AlignmentArguments,
    AlignmentTrainingArguments,
    ArgumentError,
    DataArguments,
    ModelArguments,
)
from transformers_align.training.checkpoints import ResumeArguments
from transformers_align.training.launch import argv_with_cpu_default, cpu_when_no_accelerator
from transformers_align.training.run import configure_logging, train
from transformers_align.training.safety import TrainingDiverged
from transformers_align.training.torchrun import DIVERGED_EXIT, USER_ERROR_EXIT


def parse_args(argv=None):
    """(model, alignment, data, training, resume) arguments, from the command line or one JSON file."""
    parser = HfArgumentParser(
        (ModelArguments, AlignmentArguments, DataArguments, AlignmentTrainingArguments, ResumeArguments)
    )
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) == 1 and argv[0].endswith(".json"):
            return parser.parse_dict(cpu_when_no_accelerator(read_json(argv[0])))
        return parser.parse_args_into_dataclasses(argv_with_cpu_default(argv))
    except UserError:
        raise
    except ValueError as error:  # TrainingArguments.__post_init__ refusing a combination of its own flags
        raise ArgumentError(" ".join(str(error).split())) from None


def main(argv=None):
    try:
        model_args, alignment_args, data_args, training_args, resume_args = parse_args(argv)
        configure_logging(training_args)
        train(model_args, alignment_args, data_args, training_args, resume_args)
    except (UserError, TrainingDiverged) as error:
        # The user's input, or a diverged run (every rank stops at the same step): one line, no traceback (bugs
        # keep theirs). torchrun's RANK, not the Trainer's, which may be wrong (see LaunchError).
        if os.environ.get("RANK", "0") == "0":
            print(f"run_clm_lora: error: {error}", file=sys.stderr)
        raise SystemExit(DIVERGED_EXIT if isinstance(error, TrainingDiverged) else USER_ERROR_EXIT) from None


if __name__ == "__main__":
    main()
