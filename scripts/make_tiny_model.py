"""Build the embedded default model: a random tiny model of a supported type and a byte-level tokenizer, offline."""

from dataclasses import dataclass

from transformers_align.cli import option, parse_arguments
from transformers_align.tiny import TINY_ARCHITECTURES, build_tiny_model


@dataclass
class TinyModelArguments:
    output_dir: str = option(aliases=["--output-dir"], help="folder to write the model and tokenizer to")
    model_type: str = option("llama", aliases=["--model-type"], choices=sorted(TINY_ARCHITECTURES), help="architecture")
    seed: int = option(0, help="seed of the random weights")


def main(argv=None):
    (args,) = parse_arguments((TinyModelArguments,), argv, __doc__)
    print(build_tiny_model(args.output_dir, args.model_type, args.seed))


if __name__ == "__main__":
    main()
