"""Train a causal LM with task and/or alignment losses (mid-align's run_clm_lora.py arguments keep working)."""
import sys

from transformers import HfArgumentParser, TrainingArguments

from transformers_align.data.jsonl import DataFormatError
from transformers_align.training.arguments import AlignmentArguments, ArgumentError, DataArguments, ModelArguments
from transformers_align.training.run import configure_logging, train


def main(argv=None):
    parser = HfArgumentParser((ModelArguments, AlignmentArguments, DataArguments, TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, alignment_args, data_args, training_args = parser.parse_json_file(argv[0])
    else:
        model_args, alignment_args, data_args, training_args = parser.parse_args_into_dataclasses(argv)
    configure_logging(training_args)
    try:
        train(model_args, alignment_args, data_args, training_args)
    except (DataFormatError, ArgumentError) as error:  # the user's input: one line, no traceback (bugs keep theirs)
        print(f"run_clm_lora: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
